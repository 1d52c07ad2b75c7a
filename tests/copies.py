"""The stores the engine contract tests compare: the sample logs and some awkward runs in an embedded store with
something of every ledger table beside, and its copy in ClickHouse (chDB), made as `migrate --to` makes one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fourgent.filters import RunFilter
from fourgent.store.clickhouse import ClickHouseStore
from fourgent.store.duckdb import DuckDBStore
from helpers import record_sample_lineage, run_line

SAMPLE_RUNS, SAMPLE_REJECTED = 356, 8  # the sample logs'

# Beside the samples: references that hold LIKE's wildcards and a backslash, letters whose lower case depends on
# the rule (a final sigma, a dotted I), and instants with microseconds on either side of a millisecond's half.
AWKWARD = [
    run_line("run_awk_1", reference="50%_off\\", started_at="2026-10-03T10:00:00.000500Z",
             finished_at="2026-10-03T10:00:01.000499Z"),
    run_line("run_awk_2", reference="ΟΔΟΣ-7 İstanbul", started_at="2026-10-03T23:59:59.999600Z",
             finished_at="2026-10-04T00:00:00.000400Z"),
    run_line("run_awk_3", reference="plain", started_at="2026-10-04T00:00:00.000001Z",
             finished_at="2026-10-04T00:00:00.000999Z"),
]
AWKWARD_RUNS = SAMPLE_RUNS + len(AWKWARD)


def embedded_copy_source(folder: Path, samples: Path) -> DuckDBStore:
    """The sample logs and the awkward runs read into an embedded store, with lineage, a comment and a handled
    failure beside."""
    store = DuckDBStore(folder / "store.duckdb")
    record_sample_lineage(store)
    logs = folder / "logs"
    logs.mkdir()
    for f in samples.glob("*.jsonl"):
        (logs / f.name).write_bytes(f.read_bytes())
    (logs / "awkward.jsonl").write_text("".join(json.dumps(line) + "\n" for line in AWKWARD), encoding="utf-8")
    store.ingest([logs])
    failed = store.select_ids(RunFilter(statuses=("failed",)), limit=3)
    store.add_comment(failed[0], "ana@example.com", "looking")
    store.mark_handled([failed[1]], "ana@example.com", "customer cancelled the order")
    ledger(store, failed[2])
    return store


def ledger(store: DuckDBStore, failed: str) -> None:
    """What people and the alerts keep beside the runs, one or more rows of each: the copy carries it all."""
    from cryptography.fernet import Fernet

    from fourgent.store import AlertRule, AuditEntry

    store.set_paused("stripe-payment-xero-invoice", True, "ana@example.com")
    store.set_paused("hubspot-closed-won-quickbooks-invoice", True, "bo@example.com")
    store.set_paused("hubspot-closed-won-quickbooks-invoice", False)  # unpaused: not copied as paused
    token = Fernet(Fernet.generate_key()).encrypt(b"qb-secret-token").decode()
    store.put_connection("QuickBooks", "http://127.0.0.1:9/qb", token, "oken")
    store.put_connection("Xero", "http://127.0.0.1:9/xero", None, None)
    store.record_calls(ok=["Xero"], refused=["QuickBooks"])
    store.claim([failed])
    for i, (action, outcome) in enumerate([("retrigger", "ok"), ("pause", "refused"), ("comment", "ok")]):
        store.record_audit(AuditEntry(at=datetime(2026, 11, 1, 9, i, 0, 123_456, tzinfo=UTC),
                                      actor=f"{'Ana' if i % 2 == 0 else 'bo'}@example.com", role="operator",
                                      via="web", action=action, target=failed, detail={"n": i, "why": "ΟΔΟΣ"},
                                      outcome=outcome, message=None if outcome == "ok" else "needs admin"))
    store.put_alert_destination("ops", Fernet(Fernet.generate_key()).encrypt(b"json://127.0.0.1/h").decode(),
                                "json://127.0.0.1")
    rules = [store.put_alert_rule(AlertRule("auth", "error_kind", 1, subject="auth", destination="ops",
                                            updated_by="ana@example.com")),
             store.put_alert_rule(AlertRule("quiet", "stuck", 30, updated_by="ana@example.com")),
             store.put_alert_rule(AlertRule("gone", "unresolved", 10, updated_by="ana@example.com"))]
    store.delete_alert_rule(rules[2])
    at = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    fired = store.fire_alert(store.alert_rules()[0], "3 runs failed", 3, "?kind=auth", "dashboard", at)
    assert fired is not None
    store.resolve_alert(fired.episode, at.replace(hour=9))
    store.fire_alert(store.alert_rules()[0], "4 runs failed", 4, "?kind=auth", "cli", at.replace(hour=11))
    store.fire_alert(store.alert_rules()[1], "a run is stuck", 1, "?status=running", "cli", at.replace(hour=12))
    first = store.pending_alerts()[0]
    store.alert_delivered(first.delivery, True, 1, None, at.replace(hour=10))


def clickhouse_copy(embedded: DuckDBStore, folder: Path) -> ClickHouseStore:
    store = ClickHouseStore(f"chdb://{folder / 'clickhouse'}")
    store.load(embedded.dump())
    return store
