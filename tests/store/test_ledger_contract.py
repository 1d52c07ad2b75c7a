"""The Ledger's comments, pauses and connections, on every engine that has them: the embedded store, and ClickHouse
(chDB, in this process) holding a copy of the sample runs."""

from __future__ import annotations

import pytest

from fourgent.filters import RunFilter
from fourgent.store import RunNotFound


def test_comments_belong_to_runs_and_come_newest_first(ledger_book):
    run_id = ledger_book.select_ids(RunFilter(), limit=1)[0]
    ledger_book.add_comment(run_id, "Ana", "first")
    ledger_book.add_comment(run_id, "Li", "second")
    assert [c.body for c in ledger_book.comments(run_id)] == ["second", "first"]
    assert ledger_book.comment_counts([run_id, "nope"]) == {run_id: 2}
    with pytest.raises(RunNotFound):
        ledger_book.add_comment("no-such-run", "Ana", "x")


def test_pauses_are_kept_with_who(ledger_book):
    ledger_book.set_paused("wf", True, "ana")
    ledger_book.set_paused("wf", True, "li")  # pausing again keeps the first
    assert ledger_book.paused()["wf"][1] == "ana"
    ledger_book.set_paused("wf", False)
    assert ledger_book.paused() == {}


def test_connections_keep_what_was_put_and_each_call_answered(ledger_book):
    ledger_book.put_connection("Xero", "http://x", "ciphertext", "1234")
    ledger_book.put_connection("Slack", "http://s", None, None)
    assert ledger_book.connection("Xero") == ("http://x", "ciphertext") and ledger_book.connection("No") is None
    ledger_book.record_calls([], ["Xero"])
    rows = {r.app: r for r in ledger_book.connection_rows()}
    assert rows["Xero"].refused and not rows["Slack"].refused and list(rows) == ["Slack", "Xero"]
    ledger_book.record_calls(["Xero"], [])
    assert not next(r for r in ledger_book.connection_rows() if r.app == "Xero").refused


def test_a_connection_put_again_keeps_when_it_last_answered(ledger_book):
    ledger_book.put_connection("Xero", "http://x", "ciphertext", "1234")
    ledger_book.record_calls(["Xero"], [])
    answered = ledger_book.connection_rows()[0].last_success_at
    ledger_book.put_connection("Xero", "http://y", "ciphertext-2", "5678")
    [row] = ledger_book.connection_rows()
    assert (row.base_url, row.token_encrypted, row.last_success_at) == ("http://y", "ciphertext-2", answered)
