"""Per-hour rollups of the runs, kept up to date by ingestion, so the Overview reads thousands of rows, not millions.

`fg.hour_runs` counts runs per UTC hour, workflow, status, whether the run is a re-trigger and (for failures)
kind and app, with how many failures are unresolved; `fg.hour_durations` is a histogram of ended originals'
durations per hour and workflow in buckets 1% wide. Hours, not days, so the Overview's days follow the
viewer's zone (any zone whose offset is whole hours). Ingestion marks the UTC days it changes in
`fg.dirty_days` inside the same transaction as the change; `refresh` recomputes those days' hours. A crash
in between leaves the marks, so the next ingest repairs the rollups, and a reader can tell whether they
are current.

Any window of whole hours is a sum of rollup rows; the partial hours at a window's edges are read from
the runs themselves with the same SQL (`facts_sql` / `hist_sql`), so counts stay exact. Quantiles from
the histogram are within 0.5% of the exact value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ...overview import HOUR_MS, Histograms, Window
from ...quantiles import BUCKETS_PER_E
from .database import Cursor, in_transaction
from .sql import DAY_MS, DAY_SQL, DURATION_SQL, ENDED_SQL, NOT_SETTLED_SQL, resolved_sql

BUCKET_SQL = (f"CASE WHEN {DURATION_SQL} <= 0 THEN 0 "
              f"ELSE 1 + floor(ln({DURATION_SQL}) * {BUCKETS_PER_E})::INTEGER END")
HOUR_SQL = f"epoch_ms(started_at) // {HOUR_MS}"
FACT_COLUMNS = ("slot, workflow_id, source, destination, status, error_kind, failed_app, retrigger, runs, "
                "unresolved, first_started, last_started")


def slot_sql(size_ms: int) -> str:
    """The slot of a run: its start's epoch milliseconds in whole `size_ms` (an hour, or a quarter hour)."""
    return f"epoch_ms(started_at) // {int(size_ms)}"


def facts_sql(where: str, slot: str = HOUR_SQL, source: str = "fg.runs", since: str = "$since") -> str:
    """Runs of the rows of `source` matching `where`, per slot and the dimensions the Overview groups by
    (FACT_COLUMNS); unresolved as of now, reading re-triggers started since the parameter `since` (no
    later than the first of those runs: a re-trigger starts after its run)."""
    failed = f"SELECT id FROM {source} WHERE {where} AND status = 'failed' AND retrigger_of IS NULL"
    return f"""
    SELECT {slot} AS slot, workflow_id, any_value(source) AS source, any_value(destination) AS destination,
           status, CASE WHEN status = 'failed' THEN error_kind END AS error_kind, failed_app,
           retrigger_of IS NOT NULL AS retrigger,
           count(*) AS runs,
           count(*) FILTER (status = 'failed' AND retrigger_of IS NULL AND {NOT_SETTLED_SQL}
                            AND id NOT IN ({resolved_sql(source, since, failed)})) AS unresolved,
           min(started_at) AS first_started, max(started_at) AS last_started
    FROM {source} WHERE {where}
    GROUP BY slot, workflow_id, status, CASE WHEN status = 'failed' THEN error_kind END, failed_app, retrigger"""


def hist_sql(where: str, slot: str = HOUR_SQL) -> str:
    """Ended originals of the rows matching `where`, per slot, workflow and duration bucket."""
    return f"""
    SELECT {slot} AS slot, workflow_id, {BUCKET_SQL}::SMALLINT AS bucket, count(*) AS runs
    FROM fg.runs WHERE {where} AND status IN {ENDED_SQL} AND finished_at IS NOT NULL AND retrigger_of IS NULL
    GROUP BY ALL"""


# ---------------------------------------------------------------- keeping them current

MARK_BATCH_SQL = f"""
INSERT OR IGNORE INTO fg.dirty_days
SELECT DISTINCT {DAY_SQL} FROM fg.runs WHERE seq >= $base
UNION
-- a re-trigger can resolve its original: the original's day changes too
SELECT DISTINCT {DAY_SQL} FROM fg.runs
WHERE id IN (SELECT retrigger_of FROM fg.runs WHERE seq >= $base AND retrigger_of IS NOT NULL)
"""


def mark_batch(cur: Cursor, base: int) -> None:
    """Inside a batch's transaction: the days its new rows (and the originals they re-trigger) fall on."""
    cur.execute(MARK_BATCH_SQL, {"base": base})


def mark_runs(cur: Cursor, run_ids: list[str]) -> None:
    """Inside the transaction that changes what they count as (handled or not): the days of these runs."""
    cur.execute(f"INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs "
                "WHERE id IN (SELECT unnest(?::VARCHAR[]))", [run_ids])


def mark_rows(cur: Cursor, rows_sql: str) -> None:
    """Inside the transaction that deletes them: the days of the rows `rows_sql` selects (their seq)."""
    cur.execute(f"INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs "
                f"WHERE seq IN ({rows_sql})")


def is_current(cur: Cursor) -> bool:
    return cur.execute("SELECT count(*) FROM fg.dirty_days").fetchall()[0][0] == 0


def refresh(cur: Cursor) -> int:
    """Recompute the rollups of the marked days, in one transaction; returns how many days."""
    first, last, days = cur.execute("SELECT min(day), max(day), count(*) FROM fg.dirty_days").fetchall()[0]
    if not days:
        return 0
    where = (f"started_at >= make_timestamptz($first::BIGINT * {DAY_MS} * 1000) "
             f"AND started_at < make_timestamptz(($last::BIGINT + 1) * {DAY_MS} * 1000) "
             f"AND {DAY_SQL} IN (SELECT day FROM fg.dirty_days)")
    params = {"first": first, "last": last}
    per_day = f"{DAY_MS // HOUR_MS}"
    with in_transaction(cur):
        cur.execute(f"DELETE FROM fg.hour_runs WHERE hour // {per_day} IN (SELECT day FROM fg.dirty_days)")
        cur.execute(f"DELETE FROM fg.hour_durations WHERE hour // {per_day} IN (SELECT day FROM fg.dirty_days)")
        since = datetime.fromtimestamp(first * DAY_MS / 1000, UTC)
        cur.execute(f"INSERT INTO fg.hour_runs {facts_sql(where)}", {**params, "since": since})
        cur.execute(f"INSERT INTO fg.hour_durations {hist_sql(where)}", params)
        cur.execute("INSERT OR IGNORE INTO fg.snapshot_days SELECT day FROM fg.dirty_days")  # snapshot.py's
        cur.execute("DELETE FROM fg.dirty_days")
    return days


# ---------------------------------------------------------------- reading a window from them

def window_parts(w: Window) -> tuple[dict[str, Any], str]:
    """The window as whole hours [first, last) plus the partial hours' ranges at each edge, as named parameters."""
    first, last, edges = w.hour_cuts
    params: dict[str, Any] = {"first": first, "last": last, "s1": edges[0], "e1": edges[1], "s2": edges[2],
                              "e2": edges[3]}
    only = ""
    if w.workflows:
        params["wfs"] = list(w.workflows)
        only = " AND workflow_id IN (SELECT unnest($wfs::VARCHAR[]))"
    return params, only


def window_facts_sql(w: Window) -> tuple[str, dict[str, Any]]:
    """The window's facts per slot of `w.slots` (FACT_COLUMNS): whole hours from the rollups, the edges from
    the runs. In a half-hour zone the slots are quarter hours: an hour row stands for its first quarter (all
    four lie in one bucket), and the hours a local midnight cuts are read from the runs too."""
    params, only = window_parts(w)
    if w.whole_hours:
        return (f"""
            SELECT hour AS slot, workflow_id, source, destination, status, error_kind, failed_app, retrigger, runs,
                   unresolved, first_started, last_started
            FROM fg.hour_runs WHERE hour >= $first AND hour < $last{only}
            UNION ALL {facts_sql("started_at >= $s1 AND started_at < $e1" + only, since="$s1")}
            UNION ALL {facts_sql("started_at >= $s2 AND started_at < $e2" + only, since="$s2")}""", params)
    per_hour = HOUR_MS // w.slots.size
    slot = slot_sql(w.slots.size)
    params["cut"] = [h for h in w.cut_hours if params["first"] <= h < params["last"]]
    cut = f"{HOUR_SQL} IN (SELECT unnest($cut::BIGINT[]))"
    return (f"""
        SELECT hour * {per_hour} AS slot, workflow_id, source, destination, status, error_kind, failed_app,
               retrigger, runs, unresolved, first_started, last_started
        FROM fg.hour_runs WHERE hour >= $first AND hour < $last
          AND hour NOT IN (SELECT unnest($cut::BIGINT[])){only}
        UNION ALL {facts_sql("started_at >= $e1 AND started_at < $s2 AND " + cut + only, slot, since="$e1")}
        UNION ALL {facts_sql("started_at >= $s1 AND started_at < $e1" + only, slot, since="$s1")}
        UNION ALL {facts_sql("started_at >= $s2 AND started_at < $e2" + only, slot, since="$s2")}""", params)


def unresolved_sum(cur: Cursor, w: Window, kinds: tuple[str, ...] = (), apps: tuple[str, ...] = ()) -> int:
    """Unresolved failures started in the window (of its workflows, kinds and apps), from the rollups."""
    rows, params = window_facts_sql(w)
    where = "status = 'failed'"
    if kinds:
        where += " AND error_kind IN (SELECT unnest($kinds::VARCHAR[]))"
        params["kinds"] = list(kinds)
    if apps:
        where += " AND failed_app IN (SELECT unnest($apps::VARCHAR[]))"
        params["apps"] = list(apps)
    return int(cur.execute(f"SELECT coalesce(sum(unresolved), 0) FROM ({rows}) WHERE {where}",
                           params).fetchall()[0][0])


def window_hist(cur: Cursor, w: Window) -> Histograms:
    """(bucket, runs) of ended originals per workflow, and under None for all of them."""
    params, only = window_parts(w)
    rows = cur.execute(f"""
        SELECT workflow_id, bucket, sum(runs)::BIGINT FROM (
            SELECT workflow_id, bucket, runs FROM fg.hour_durations WHERE hour >= $first AND hour < $last{only}
            UNION ALL SELECT workflow_id, bucket, runs FROM ({hist_sql(
                "started_at >= $s1 AND started_at < $e1" + only)})
            UNION ALL SELECT workflow_id, bucket, runs FROM ({hist_sql(
                "started_at >= $s2 AND started_at < $e2" + only)})
        ) GROUP BY ALL""", params).fetchall()
    hist: Histograms = {None: []}
    totals: dict[int, int] = {}
    for wf, bucket, n in rows:
        hist.setdefault(wf, []).append((bucket, n))
        totals[bucket] = totals.get(bucket, 0) + n
    hist[None] = list(totals.items())
    return hist
