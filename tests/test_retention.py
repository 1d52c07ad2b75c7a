"""Retention: the policy, pruning with its archive, the file that shrinks, offsets that keep pruned runs out,
rollups and snapshot that stay exact, the audit, and the dashboard's daily application."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from test_rollup import assert_current

from fourgent import retention, workflows
from fourgent.access import RETENTION_POLICY, Actor, Forbidden, Role
from fourgent.filters import RunFilter
from fourgent.store import Retrigger, close_store
from fourgent.store.duckdb import prune as prune_sql
from fourgent.store.duckdb import worker
from fourgent.workspace import apply_retention, open_workspace, prune, retention_policy
from helpers import load_demo, run_line

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
ADMIN = Actor("ada@example.com", Role.ADMIN, "web")
OPERATOR = Actor("otto@example.com", Role.OPERATOR, "web")
XERO = {"id": "stripe-payment-xero-invoice", "source": "Stripe Payment", "destination": "Xero Invoice"}


def at(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")


def line(run_id: str, days_ago: float, **fields) -> dict:
    return run_line(run_id, **{"started_at": at(days_ago), "finished_at": at(days_ago), "steps": [], **fields})


@pytest.fixture
def ws(tmp_path):
    workspace = open_workspace(tmp_path / "data")
    yield workspace
    workspace.store.close()


def runs_of(store) -> set[str]:
    return {r[0] for r in store.db.cursor().execute("SELECT id FROM fg.runs").fetchall()}


# ---------------------------------------------------------------- the policy

def test_ages_are_whole_days_and_a_bad_one_says_what_it_takes():
    assert retention.parse_days("90d", "--older-than") == 90
    assert retention.parse_days(" 7 ", "X") == 7 and retention.parse_days("30 days", "X") == 30
    for bad in ("", "0d", "-5", "90h", "1.5d", "ninety", "99999999d"):
        with pytest.raises(retention.PolicyError, match="--older-than must be a whole number of days"):
            retention.parse_days(bad, "--older-than")


def test_the_policy_comes_from_the_environment_and_the_definitions(tmp_path, monkeypatch):
    ws_paths = open_workspace(tmp_path / "data").paths
    monkeypatch.delenv(retention.ENV, raising=False)
    assert not retention_policy(ws_paths).in_force
    monkeypatch.setenv(retention.ENV, "90")
    folder = ws_paths.data_dir / "workflows"
    definition = json.loads((folder / "stripe-payment-xero-invoice.json").read_text())
    (folder / "stripe-payment-xero-invoice.json").write_text(json.dumps({**definition, "retention_days": 365}))
    policy = retention_policy(ws_paths)
    assert policy == retention.Policy(90, {"stripe-payment-xero-invoice": 365})
    words = policy.describe({"stripe-payment-xero-invoice": "Stripe → Xero"})
    assert "more than 90 days ago" in words and "Stripe → Xero: 365 days" in words
    monkeypatch.setenv(retention.ENV, "ninety")
    with pytest.raises(retention.PolicyError, match="FOURGENT_RETENTION_DAYS must be a whole number"):
        retention_policy(ws_paths)


@pytest.mark.parametrize("value", [0, -1, "30", 1.5, True, 10**9])
def test_a_definition_with_an_unusable_retention_names_the_file_and_field(value):
    data = json.loads((workflows.BUILTIN_DIR / "stripe-payment-xero-invoice.json").read_text())
    with pytest.raises(workflows.DefinitionError, match="xero.json: retention_days must be a whole number"):
        workflows.parse({**data, "retention_days": value}, "xero.json")


# ---------------------------------------------------------------- pruning

def test_prune_removes_old_runs_with_their_ledger_rows_and_keeps_the_rest(ws, write_log):
    store = ws.store
    write_log(ws.paths.logs_dir / "a.jsonl", line("old_1", 100), line("old_2", 95, status="failed",
              error={"message": "boom"}), line("kept_1", 10), line("kept_2", 1))
    store.record_retriggers([Retrigger("old_2", "old_1", "otto", NOW - timedelta(days=95))])
    store.ingest([ws.paths.logs_dir])
    store.add_comment("old_1", "otto", "an old note")
    store.add_comment("kept_1", "otto", "a note to keep")
    store.claim(["old_2"])
    assert store.mark_handled(["old_2"], "otto", "a duplicate") == ["old_2"]
    report = prune(ws, ADMIN, retention.Policy(90), now=NOW)
    assert (report.runs, report.comments, report.ledger_rows) == (2, 1, 3)  # a re-trigger record, a claim, a mark
    assert runs_of(store) == {"kept_1", "kept_2"}
    assert [c.body for c in store.comments("kept_1")] == ["a note to keep"]
    cur = store.db.cursor()
    assert cur.execute("SELECT count(*) FROM fg.comments WHERE run_id = 'old_1'").fetchall() == [(0,)]
    assert cur.execute("SELECT count(*) FROM fg.retriggers").fetchall() == [(0,)]
    assert cur.execute("SELECT count(*) FROM fg.retrigger_claims").fetchall() == [(0,)]
    assert cur.execute("SELECT count(*) FROM fg.handled").fetchall() == [(0,)]
    # The SQL surface's copy follows: no handled mark of a pruned run is left in the `handled` view.
    assert worker.run(store.db.snapshot_dir, "SELECT count(*) FROM handled", max_rows=1,
                      time_limit=30).rows == [(0,)]
    assert store.last_pruned() is not None


def test_a_workflow_keeps_its_own_days_either_way(ws, write_log):
    write_log(ws.paths.logs_dir / "a.jsonl", line("hub_old", 40), line("hub_new", 20),
              line("xero_old", 400, workflow=XERO), line("xero_mid", 100, workflow=XERO))
    ws.store.ingest([ws.paths.logs_dir])
    report = prune(ws, ADMIN, retention.Policy(30, {XERO["id"]: 365}), now=NOW)
    assert report.runs == 2 and runs_of(ws.store) == {"hub_new", "xero_mid"}
    prune(ws, ADMIN, retention.Policy(None, {XERO["id"]: 50}), now=NOW)  # no default: the others are kept
    assert runs_of(ws.store) == {"hub_new"}


def test_rejected_lines_go_when_older_than_every_cutoff(ws, write_log):
    write_log(ws.paths.logs_dir / "a.jsonl", line("r1", 1), "not json\n")
    ws.store.ingest([ws.paths.logs_dir])
    cur = ws.store.db.cursor()
    cur.execute("UPDATE fg.rejects SET ingested_at = ?", [NOW - timedelta(days=60)])
    assert prune(ws, ADMIN, retention.Policy(None, {XERO["id"]: 30}), now=NOW).rejected_lines == 0  # some kept for good
    assert prune(ws, ADMIN, retention.Policy(30, {XERO["id"]: 90}), now=NOW).rejected_lines == 0  # Xero keeps 90 days
    assert prune(ws, ADMIN, retention.Policy(30, {XERO["id"]: 50}), now=NOW).rejected_lines == 1
    assert cur.execute("SELECT count(*) FROM rejected_lines").fetchall() == [(0,)]


def test_a_dry_run_counts_and_changes_nothing(ws, write_log):
    write_log(ws.paths.logs_dir / "a.jsonl", line("old", 100), line("new", 1))
    ws.store.ingest([ws.paths.logs_dir])
    before = ws.paths.db_path.read_bytes()
    report = prune(ws, ADMIN, retention.Policy(90), archive=ws.paths.data_dir / "archive", dry_run=True, now=NOW)
    assert report.runs == 1 and report.dry_run
    assert runs_of(ws.store) == {"old", "new"} and ws.store.last_pruned() is None
    assert ws.store.audit_entries() == [] and not (ws.paths.data_dir / "archive").exists()
    assert ws.paths.db_path.read_bytes() == before


def test_the_archive_holds_every_pruned_row_as_parquet_before_they_go(ws, write_log, tmp_path):
    write_log(ws.paths.logs_dir / "a.jsonl", line("old_1", 100, steps=[
        {"name": "Fetch deal", "app": "HubSpot", "status": "finished", "started_at": at(100)}]),
        line("old_2", 99, status="failed", error={"message": "a test record"}), line("new", 1))
    ws.store.ingest([ws.paths.logs_dir])
    ws.store.add_comment("old_1", "otto", "why it failed")
    ws.store.mark_handled(["old_2"], "otto", "a test record")
    report = prune(ws, ADMIN, retention.Policy(90), archive=tmp_path / "archive", now=NOW)
    folder = Path(report.archive or "")
    assert folder.parent == tmp_path / "archive" and folder.name.startswith("fourgent-pruned-")
    assert sorted(p.name for p in folder.iterdir()) == ["comments.parquet", "handled.parquet",
                                                         "rejected_lines.parquet", "retrigger_claims.parquet",
                                                         "retriggers.parquet", "runs.parquet"]
    runs = pl.read_parquet(folder / "runs.parquet")
    assert sorted(runs["id"]) == ["old_1", "old_2"]
    assert runs.filter(pl.col("id") == "old_1")["steps"][0][0]["name"] == "Fetch deal"
    assert pl.read_parquet(folder / "comments.parquet")["body"].to_list() == ["why it failed"]
    assert pl.read_parquet(folder / "handled.parquet")["reason"].to_list() == ["a test record"]
    again = prune(ws, ADMIN, retention.Policy(90), archive=tmp_path / "archive", now=NOW)
    assert again.runs == 0 and again.archive != report.archive  # a folder of its own, the first one kept


def test_an_archive_that_cannot_be_written_removes_nothing(ws, write_log, tmp_path, monkeypatch):
    write_log(ws.paths.logs_dir / "a.jsonl", line("old", 100), line("new", 1))
    ws.store.ingest([ws.paths.logs_dir])
    (tmp_path / "a-file").write_text("")
    with pytest.raises(OSError):
        prune(ws, ADMIN, retention.Policy(90), archive=tmp_path / "a-file" / "archive", now=NOW)
    assert runs_of(ws.store) == {"old", "new"}
    [entry] = ws.store.audit_entries()
    assert entry.outcome == "failed" and entry.action == "prune"

    def crash(*args: object) -> None:  # the removal fails after the archive was written
        raise RuntimeError("disk gone")

    monkeypatch.setattr(prune_sql, "_remove", crash)
    with pytest.raises(RuntimeError):
        prune(ws, ADMIN, retention.Policy(90), archive=tmp_path / "archive", now=NOW)
    assert runs_of(ws.store) == {"old", "new"} and list((tmp_path / "archive").iterdir()) == []


def test_pruning_takes_an_admin_and_is_audited_with_its_counts_and_sizes(ws, write_log, tmp_path):
    write_log(ws.paths.logs_dir / "a.jsonl", line("old", 100), line("new", 1))
    ws.store.ingest([ws.paths.logs_dir])
    with pytest.raises(Forbidden, match="takes the admin role"):
        prune(ws, OPERATOR, retention.Policy(90), now=NOW)
    assert runs_of(ws.store) == {"old", "new"}
    prune(ws, ADMIN, retention.Policy(90), archive=tmp_path / "archive", now=NOW)
    ok, refused = ws.store.audit_entries()
    assert (refused.outcome, ok.outcome, ok.action, ok.actor) == ("refused", "ok", "prune", ADMIN.name)
    assert ok.detail is not None and ok.detail["cutoff"] == (NOW - timedelta(days=90)).isoformat()
    assert ok.detail["archive_dir"] == str(tmp_path / "archive") and ok.detail["runs"] == 1
    assert ok.detail["bytes_before"] > 0 and ok.detail["bytes_after"] > 0 and ok.target is not None


def test_pruned_runs_do_not_come_back_when_the_logs_are_read_again(ws, write_log):
    log = write_log(ws.paths.logs_dir / "a.jsonl", line("old", 100), line("new", 1))
    ws.ingest_logs()
    prune(ws, ADMIN, retention.Policy(90), now=NOW)
    ws.ingest_logs()
    assert runs_of(ws.store) == {"new"}
    write_log(log, line("newer", 0.5), mode="ab")  # the file grows: read on from its offset
    assert ws.ingest_logs().lines == 1 and runs_of(ws.store) == {"new", "newer"}
    close_store(ws.store)
    again = open_workspace(ws.paths.data_dir)  # a restart reads the logs again from the offsets kept
    again.ingest_logs()
    assert runs_of(again.store) == {"new", "newer"}
    close_store(again.store)


def test_rollups_stay_exact_and_the_snapshot_keeps_no_pruned_run(store, tmp_path):
    load_demo(store, tmp_path / "logs", 6000, days=60, now=NOW)
    cutoff, before = NOW - timedelta(days=30), store.run_count()
    report = store.prune(cutoff, {}, archive=None)
    left = store.run_count()
    assert report.runs > 0 and left > 0 and report.runs + left == before
    assert_current(store.db.cursor())  # the rollups equal a fresh recompute over what is left
    assert store.count(RunFilter(end=cutoff)) == 0
    result = worker.run(store.db.snapshot_dir, "SELECT count(*) AS n, min(started_at) AS first FROM runs",
                        max_rows=10, time_limit=30)
    n, first = result.rows[0]
    assert n == left and first >= cutoff
    steps = worker.run(store.db.snapshot_dir, "SELECT count(DISTINCT run_id) FROM steps", max_rows=1,
                       time_limit=30).rows[0][0]
    assert steps <= left


def test_the_store_file_shrinks_and_keeps_everything_else(store, tmp_path):
    load_demo(store, tmp_path / "logs", 20_000, days=100, now=NOW)
    store.add_comment(store.page(RunFilter(), size=1)["id"][0], "otto", "the newest run's note")
    store.put_connection("Xero", "https://xero.example.com", "gAAAA-encrypted", "1234")
    store.record_audit(_entry())
    cur = store.db.cursor()
    files = cur.execute('SELECT path, "offset", lines FROM fg.files ORDER BY path').fetchall()
    version = cur.execute("SELECT value FROM fg.meta WHERE key = 'schema_version'").fetchall()
    del cur
    before = store.path.stat().st_size
    report = store.prune(NOW - timedelta(days=10), {}, archive=None)  # the newest 10%
    assert report.compacted and report.bytes_before >= before
    # Without the rewrite the file grows (1.26x here: the deletes' checkpoint). DuckDB's 256 KB blocks, a few
    # per table, weigh on a store this small: the ≤ 20% of the issue is measured at 10M (bench --prune).
    assert store.path.stat().st_size <= report.bytes_after < 0.65 * report.bytes_before
    cur = store.db.cursor()
    assert cur.execute('SELECT path, "offset", lines FROM fg.files ORDER BY path').fetchall() == files
    assert cur.execute("SELECT value FROM fg.meta WHERE key = 'schema_version'").fetchall() == version
    assert store.connection("Xero") == ("https://xero.example.com", "gAAAA-encrypted")
    assert len(store.comments(store.page(RunFilter(), size=1)["id"][0])) == 1
    store.record_audit(_entry())  # the audit's sequence goes on from where it was
    numbers = [r[0] for r in cur.execute("SELECT entry FROM fg.audit ORDER BY entry").fetchall()]
    assert numbers == sorted(set(numbers)) and len(numbers) == 2
    assert_current(cur)
    assert oct(store.path.stat().st_mode & 0o777) == "0o600"
    assert not list(store.path.parent.glob(".*.compact*"))


def _entry():
    from fourgent.store import AuditEntry

    return AuditEntry(NOW, "ada", "admin", "web", "prune", None, None, "ok")


def test_readers_wait_for_the_swap_and_read_the_new_file(store, tmp_path):
    import threading

    load_demo(store, tmp_path / "logs", 3000, days=100, now=NOW)
    counts: list[int] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            counts.append(store.run_count())

    reader = threading.Thread(target=read)
    reader.start()
    try:
        store.prune(NOW - timedelta(days=10), {}, archive=None)
    finally:
        stop.set()
        reader.join()
    assert counts and counts[-1] == store.run_count() < 3000  # no reader failed, the last read the new file


# ---------------------------------------------------------------- the dashboard applies it once a day

def test_the_dashboard_applies_the_policy_once_a_day(ws, write_log, monkeypatch):
    write_log(ws.paths.logs_dir / "a.jsonl", line("old", 100), line("new", 1))
    ws.ingest_logs()
    monkeypatch.delenv(retention.ENV, raising=False)
    assert apply_retention(ws, now=NOW) is None and runs_of(ws.store) == {"old", "new"}  # no policy
    monkeypatch.setenv(retention.ENV, "90")
    ws.retention_due = None
    report = apply_retention(ws, now=NOW)
    assert report is not None and report.runs == 1 and runs_of(ws.store) == {"new"}
    [entry] = ws.store.audit_entries()
    assert (entry.actor, entry.via, entry.action) == (RETENTION_POLICY.name, "dashboard", "prune")
    write_log(ws.paths.logs_dir / "b.jsonl", line("late", 200))  # an old run read later
    ws.ingest_logs()
    assert apply_retention(ws, now=datetime.now(UTC) + timedelta(hours=23)) is None  # not a day since
    assert "late" in runs_of(ws.store)
    assert apply_retention(ws, now=datetime.now(UTC) + timedelta(days=1, minutes=1)) is not None
    assert "late" not in runs_of(ws.store)


def test_refresh_prunes_beside_the_pages_and_a_bad_setting_breaks_nothing(ws, write_log, monkeypatch):
    write_log(ws.paths.logs_dir / "a.jsonl", line("old", 100), line("new", 0))
    monkeypatch.setenv(retention.ENV, "weekly")
    assert ws.refresh(min_interval=0) is not None and ws.retention_thread is None  # read; nothing to prune by
    assert runs_of(ws.store) == {"old", "new"} and ws.store.audit_entries() == []
    monkeypatch.setenv(retention.ENV, "30")
    ws.retention_due = None
    with ws.store.db.write_lock:  # the prune cannot start its removal yet: this refresh must not wait for it
        assert ws.refresh(min_interval=0) is None and ws.retention_thread is not None
        assert ws.retention_thread.is_alive() and ws.refresh(min_interval=0) is None  # no ingest meanwhile
    ws.retention_thread.join(timeout=60)
    assert runs_of(ws.store) == {"new"}
    write_log(ws.paths.logs_dir / "a.jsonl", line("newer", 0), mode="ab")
    assert ws.refresh(min_interval=0) is not None and runs_of(ws.store) == {"new", "newer"}  # not due again


def test_the_per_run_tables_are_the_ledger_tables_keyed_by_run_id(store):
    """A per-run ledger table added later must join PER_RUN_TABLES, or its rows outlive their runs."""
    keyed = {f"fg.{t}" for (t,) in store.db.cursor().execute(
        "SELECT table_name FROM duckdb_columns() WHERE schema_name = 'fg' AND column_name = 'run_id'").fetchall()}
    assert keyed == set(prune_sql.PER_RUN_TABLES)
