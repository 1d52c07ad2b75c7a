"""The Runs page's URL contract: every field reads back from the URL it writes, malformed values fall back,
and the filter and the sentence say what the view shows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fourgent.filters import (
    FIRST_DAY,
    LAST_DAY,
    MAX_REPEATS,
    PAGE_SIZES,
    PRESET_SPAN,
    RunFilter,
    RunsQuery,
    runs_query,
)
from fourgent.spec import STATUSES

text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40)
days = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)
instants = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2999, 12, 30),
                        timezones=st.just(UTC)).map(lambda t: t.replace(microsecond=t.microsecond // 1000 * 1000))


@st.composite
def queries(draw: st.DrawFn) -> RunsQuery:
    """Any query the page can be in once its dates are picked: custom exactly when days or a window are set."""
    when = draw(st.sampled_from(["any", *PRESET_SPAN, "days", "window"]))
    picked = window = None
    if when == "days":
        first, last = sorted(draw(st.lists(days, min_size=2, max_size=2)))
        picked = (first, last)
    elif when == "window":
        start = draw(instants)
        window = (start, start + draw(st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=90))))
    return RunsQuery(
        q=draw(st.text(max_size=30).map(str.strip)),
        statuses=tuple(s for s in STATUSES if s in draw(st.sets(st.sampled_from(STATUSES)))),
        workflows=tuple(draw(st.lists(text, max_size=3))),
        range="custom" if picked or window else when,  # type: ignore[arg-type]
        days=picked, window=window,
        page=draw(st.integers(min_value=1, max_value=1_000_000)),
        size=draw(st.sampled_from(PAGE_SIZES)),
        oldest=draw(st.booleans()), utc=draw(st.booleans()), unresolved=draw(st.booleans()),
        kinds=tuple(draw(st.lists(text, max_size=MAX_REPEATS))),
        apps=tuple(draw(st.lists(text, max_size=MAX_REPEATS))),
        error=draw(st.text(max_size=60)),
        originals=draw(st.booleans()), resolved=draw(st.booleans()),
    )


@given(queries())
def test_every_field_reads_back_from_the_url_it_writes(q: RunsQuery) -> None:
    assert RunsQuery.parse(q.params()) == q


@given(queries())
def test_a_link_and_a_query_string_hold_the_same_query(q: RunsQuery) -> None:
    from urllib.parse import urlencode

    link = q.link()
    pairs = [(k, v) for k, values in link.items() for v in ([values] if isinstance(values, str) else values)]
    assert RunsQuery.from_string(urlencode(pairs)) == q


def test_the_default_view_writes_no_parameters() -> None:
    assert RunsQuery().params() == {}
    assert RunsQuery.parse({}) == RunsQuery()


@pytest.mark.parametrize("params, expected", [
    ({"page": ["-3"]}, RunsQuery()),
    ({"page": ["x"]}, RunsQuery()),
    ({"page": ["99999999999"]}, RunsQuery(page=1_000_000)),
    ({"size": ["7"]}, RunsQuery()),
    ({"status": ["failed,bogus"]}, RunsQuery(statuses=("failed",))),
    ({"status": ["skipped", "failed"]}, RunsQuery(statuses=("failed", "skipped"))),
    ({"range": ["2y"]}, RunsQuery()),
    ({"from": ["1969-12-31"]}, RunsQuery()),
    ({"from": ["3000-01-01"]}, RunsQuery()),
    ({"from": ["2026-13-01"]}, RunsQuery()),
    ({"from": ["2026-11-07"], "to": ["2026-11-01"]}, RunsQuery(range="custom", days=(date(2026, 11, 1),
                                                                                    date(2026, 11, 7)))),
    ({"from": ["2026-11-01"]}, RunsQuery(range="custom", days=(date(2026, 11, 1), date(2026, 11, 1)))),
    ({"to": ["2026-11-05"]}, RunsQuery(range="custom", days=(date(2026, 11, 5), date(2026, 11, 5)))),
    ({"from": ["nope"], "to": ["2026-11-05"]}, RunsQuery(range="custom", days=(date(2026, 11, 5), date(2026, 11, 5)))),
    ({"from": ["2026-11-24T14:00:00Z"], "to": ["2026-11-24T13:00:00Z"]}, RunsQuery()),  # an empty window
    ({"from": ["2026-11-24T13:00:00"], "to": ["2026-11-24T14:00:00"]}, RunsQuery()),  # no offset
    ({"kind": ["x" * 500] * 30}, RunsQuery(kinds=("x" * 100,) * MAX_REPEATS)),
    ({"workflow": ["a,b", ""]}, RunsQuery(workflows=("a,b",))),
])
def test_malformed_values_fall_back_to_their_defaults(params: dict[str, list[str]], expected: RunsQuery) -> None:
    assert RunsQuery.parse(params) == expected


def test_an_instant_window_keeps_its_instants_in_utc() -> None:
    q = RunsQuery.parse({"from": ["2026-11-24T14:00:00+01:00"], "to": ["2026-11-24T15:00:00+01:00"]})
    assert q.window == (datetime(2026, 11, 24, 13, tzinfo=UTC), datetime(2026, 11, 24, 14, tzinfo=UTC))
    assert q.params() == {"from": ["2026-11-24T13:00:00Z"], "to": ["2026-11-24T14:00:00Z"]}


def test_the_filter_is_what_the_view_shows_at_a_moment_in_a_zone() -> None:
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")
    assert RunsQuery(range="24h").filter(now, berlin).start == now - timedelta(days=1)
    f = RunsQuery(range="custom", days=(date(2026, 11, 1), date(2026, 11, 2))).filter(now, berlin)
    assert (f.start, f.end) == (datetime(2026, 11, 1, tzinfo=berlin), datetime(2026, 11, 3, tzinfo=berlin))
    q = RunsQuery(q="  acme ", statuses=("failed",), workflows=("w",), unresolved=True, kinds=("auth",),
                  apps=("Xero",), error="Missing #")
    assert q.filter(now, berlin) == RunFilter(q="acme", statuses=("failed",), workflows=("w",), unresolved=True,
                                              kinds=("auth",), apps=("Xero",), error="Missing #")


def test_the_sentence_says_what_the_view_shows() -> None:
    q = RunsQuery(statuses=("failed",), workflows=("hubspot",), error="Missing required field: amount")
    assert q.describe({"hubspot": "HubSpot Closed Won → QuickBooks Invoice"}) == (
        "Failed runs of HubSpot Closed Won → QuickBooks Invoice where the error reads “Missing required field: amount”")
    assert RunsQuery().describe() == "Runs"
    assert RunsQuery(unresolved=True, range="7d").describe() == "Unresolved failed runs started in the last 7 days"
    window = runs_query(datetime(2026, 11, 24, 13, tzinfo=UTC), datetime(2026, 11, 24, 14, tzinfo=UTC),
                        kinds=("auth",), apps=("QuickBooks",))
    assert window.describe(zone=ZoneInfo("UTC")) == (
        "Runs started 2026-11-24 13:00 – 2026-11-24 14:00 (UTC) where the error kind is auth and the failed step "
        "called QuickBooks")


@pytest.mark.parametrize("field, value", [
    ("statuses", ("failed",)), ("workflows", ("w",)), ("start", datetime(2026, 1, 1, tzinfo=UTC)),
    ("end", datetime(2026, 1, 1, tzinfo=UTC)), ("unresolved", True), ("kinds", ("auth",)), ("apps", ("Xero",)),
])
def test_the_rollups_answer_only_the_fields_they_hold(field: str, value: object) -> None:
    assert RunFilter(**{field: value}).rollup_answerable  # type: ignore[arg-type]
    assert not RunFilter(q="acme", **{field: value}).rollup_answerable  # type: ignore[arg-type]
    assert not RunFilter(error="x #", **{field: value}).rollup_answerable  # type: ignore[arg-type]


def test_every_filter_field_is_either_in_the_rollups_or_known_to_need_the_runs() -> None:
    from dataclasses import fields

    names = {f.name for f in fields(RunFilter)}
    assert names >= RunFilter.ROLLUP_FIELDS
    assert names - RunFilter.ROLLUP_FIELDS == {"q", "error", "originals", "resolved"}  # over the runs unless added


def test_the_bulk_takes_the_unresolved_failures_among_the_filtered_runs() -> None:
    assert RunFilter(statuses=("finished",)).bulk_selection() is None
    assert RunFilter(statuses=("failed", "finished"), q="x").bulk_selection() == RunFilter(
        q="x", statuses=("failed",), unresolved=True)


@pytest.mark.parametrize("field, url, said, narrowed, not_it", [
    ("originals", "status=failed&originals=1", "Failed runs where the run is not a re-trigger",
     ("re-triggers", ("left out",)), "originals=0"),
    ("resolved", "status=failed&resolved=1&originals=1",
     "Failed runs where the run is not a re-trigger and it needs nothing more (resolved by a re-trigger, handled "
     "or cancelled)", ("resolved", ("since: re-triggered, handled or cancelled",)), "resolved=yes"),
])
def test_originals_and_resolved_are_url_parameters_said_in_words_and_removable(field, url, said, narrowed, not_it):
    q = RunsQuery.from_string(url)
    assert getattr(q, field) and q.params()[field] == ["1"]
    assert getattr(q.filter(datetime.now(UTC), ZoneInfo("UTC")), field)
    assert q.describe() == said
    assert narrowed in q.narrowed()
    assert not getattr(RunsQuery.from_string(not_it), field)


@pytest.mark.parametrize("params, said", [
    ({"from": ["1969-12-31"]}, "from=1969-12-31"),
    ({"to": ["3000-01-01"]}, "to=3000-01-01"),
    ({"from": ["2026-11-24T13:00:00"]}, "from=2026-11-24T13:00:00"),  # no offset
    ({"from": ["2026-11-24T14:00:00Z"], "to": ["2026-11-24T13:00:00Z"]}, "from=2026-11-24T14:00:00Z"),
    ({"page": ["x"]}, "page=x"),
    ({"size": ["7"]}, "size=7"),
    ({"status": ["failed,bogus"]}, "status=bogus"),
    ({"range": ["2y"]}, "range=2y"),
])
def test_what_a_url_sets_aside_is_said_with_its_reason(params: dict[str, list[str]], said: str) -> None:
    ignored = RunsQuery.ignored(params)
    assert [s for s, _ in ignored] == [said]
    assert all(why for _, why in ignored)


def test_a_well_formed_url_sets_nothing_aside() -> None:
    query = RunsQuery(q="x", statuses=("failed",), range="custom", days=(date(2026, 11, 1), date(2026, 11, 7)),
                      page=3, size=100)
    assert RunsQuery.ignored(query.params()) == []
    assert RunsQuery.ignored({"page": ["99999999999"]}) == []  # the last page, not an error
