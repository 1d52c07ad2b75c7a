"""`python -m fourgent bench`: the store's ingest and query speed beside its engine's floor, and re-trigger speed."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from .access import cli_actor
from .retrigger import BULK_CONCURRENCY
from .store import close_store, open_store
from .store.duckdb.bench import explore_bench, main, prune_bench, refresh_bench

__all__ = ["actions_bench", "alerts_bench", "explore_bench", "main", "prune_bench", "refresh_bench", "retrigger_bench"]


def actions_bench(runs: int, workdir: Path, marks: int = 10_000, repeat: int = 7) -> dict[str, object]:
    """On a copy of the store a full bench left in `workdir`: the unresolved counts the bulk bar shows, then
    marking `marks` unresolved failures handled across the whole range in one go (its rollup refresh is most of
    it), the counts again, and undoing the marks."""
    import statistics

    from . import handled
    from .filters import RunFilter

    source = workdir / "store.duckdb"
    if not source.exists():
        raise SystemExit("--actions needs the --workdir of an earlier full run (it holds store.duckdb)")
    copy = workdir / "actions.duckdb"
    shutil.copyfile(source, copy)
    store = open_store(copy)
    try:
        everything, one = RunFilter(), RunFilter(statuses=("failed",), unresolved=True)

        def median_ms(call: object) -> float:
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                call()  # type: ignore[operator]
                times.append((time.perf_counter() - t) * 1000)
            return statistics.median(times)

        out: dict[str, object] = {"runs": runs, "marks": marks}
        before = {"unresolved count (rollups)": median_ms(lambda: store.unresolved_count(everything)),
                  "unresolved runs, first page": median_ms(lambda: store.page(one))}
        ids = store.select_ids(one, limit=marks)
        t = time.perf_counter()
        marked = handled.mark(store, cli_actor("bench"), ids, "bench: marked handled in bulk").marked
        mark_s = time.perf_counter() - t
        after = {"unresolved count (rollups)": median_ms(lambda: store.unresolved_count(everything)),
                 "unresolved runs, first page": median_ms(lambda: store.page(one))}
        t = time.perf_counter()
        handled.unmark(store, cli_actor("bench"), ids)
        unmark_s = time.perf_counter() - t
        out.update(before_ms=before, with_marks_ms=after, mark_s=round(mark_s, 2), unmark_s=round(unmark_s, 2),
                   marked=len(marked))
        print(f"\nOperator actions on {runs:,} runs (median of {repeat}):")
        for label in before:
            print(f"  {label:<34}{before[label]:>9.1f} ms   with {len(marked):,} handled: {after[label]:>7.1f} ms")
        print(f"  mark {len(marked):,} handled in one go: {mark_s:.2f} s; undo them: {unmark_s:.2f} s")
        return out
    finally:
        close_store(store)
        copy.unlink(missing_ok=True)


def retrigger_bench(runs: int = 1000, concurrency: int = BULK_CONCURRENCY) -> dict[str, object]:
    """Bulk re-trigger of `runs` failed demo runs against the demo apps: in-process, over 127.0.0.1, and the
    dashboard's whole path (replays, the connections' bookkeeping and the ingest of the new runs)."""
    import httpx

    from . import workflows
    from .executor import Connection, Executor, log_writer
    from .retrigger import Retriggerer
    from .sandbox import Sandbox, serve, slug, transport
    from .workspace import open_workspace, retrigger

    tmp = Path(tempfile.mkdtemp(prefix="fourgent-retrigger-bench-"))
    try:
        definitions = workflows.load(workflows.BUILTIN_DIR)
        wf = definitions["hubspot-closed-won-quickbooks-invoice"]
        log = tmp / "failed.jsonl"
        with open(log, "w", encoding="utf-8") as f:
            f.writelines(json.dumps({
                    "id": f"failed_{i:06d}", "workflow": {"id": wf.id, "source": wf.source,
                                                          "destination": wf.destination},
                    "status": "failed", "started_at": "2026-11-20T10:00:00Z",
                    "error": {"message": "401 Unauthorized", "step": 1, "kind": "auth"},
                    "trigger_payload": {"record_id": str(i), "name": f"Deal {i}", "amount": 10.0,
                                        "contact_email": "a@example.com"}}) + "\n" for i in range(runs))
        store = open_store(tmp / "store.duckdb")
        store.ingest([log])
        ids = [f"failed_{i:06d}" for i in range(runs)]
        out: dict[str, object] = {"runs": runs, "concurrency": concurrency}
        sandbox = Sandbox()
        server, url = serve(sandbox)
        try:
            for label, base, client in (
                ("in-process (httpx WSGI transport)", "http://sandbox", httpx.Client(transport=transport(sandbox))),
                ("HTTP on 127.0.0.1", url, httpx.Client()),
            ):
                conns = {}
                for app in wf.apps:
                    sandbox.tokens[slug(app)] = "t-" + slug(app)
                    conns[app] = Connection(app, f"{base}/{slug(app)}", "t-" + slug(app))
                executor = Executor(conns, log_writer(tmp / "logs" / "retriggers.jsonl"), client=client,
                                    sleep=lambda s: None)
                result = Retriggerer(store, executor, definitions).bulk(ids, "bench", concurrency=concurrency)
                out[label] = {"seconds": round(result.seconds, 2), "runs_per_s": round(runs / result.seconds),
                              "outcomes": dict(result.outcomes)}
                print(f"{label:<48}{runs / result.seconds:>8,.0f} runs/s  ({result.seconds:.2f} s, "
                      f"{dict(result.outcomes)})", flush=True)
        finally:
            server.shutdown()
            server.server_close()
            close_store(store)
        # The dashboard's path, on a workspace of its own: Stripe → Xero, whose demo credentials work.
        xero = definitions["stripe-payment-xero-invoice"]
        (tmp / "ws" / "logs").mkdir(parents=True)
        (tmp / "ws" / "logs" / "failed.jsonl").write_text(log.read_text().replace(
            f'"id": "{wf.id}", "source": "{wf.source}", "destination": "{wf.destination}"',
            f'"id": "{xero.id}", "source": "{xero.source}", "destination": "{xero.destination}"'))
        ws = open_workspace(tmp / "ws")
        ws.ingest_logs()
        started = time.perf_counter()
        result = retrigger(ws, cli_actor("bench"), ids, concurrency=concurrency)
        seconds = time.perf_counter() - started
        label = "dashboard path (replay + bookkeeping + ingest)"
        out[label] = {"seconds": round(seconds, 2), "runs_per_s": round(runs / seconds),
                      "outcomes": dict(result.outcomes)}
        print(f"{label:<48}{runs / seconds:>8,.0f} runs/s  ({seconds:.2f} s, {dict(result.outcomes)})", flush=True)
        close_store(ws.store)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def alerts_bench(runs: int = 1_000_000, repeat: int = 7) -> dict[str, float]:
    """The dashboard's alert check over `runs` demo runs: each kind of rule's condition alone, and one whole check
    of all six (episodes already open: the steady state of a tick), medians in ms."""
    import statistics
    from datetime import UTC, datetime

    from . import alerts, demo
    from .access import SINGLE_USER
    from .store import AlertRule

    tmp = Path(tempfile.mkdtemp(prefix="fourgent-alerts-bench-"))
    try:
        store = open_store(tmp / "store.duckdb")
        written = demo.write_demo(tmp / "logs", runs)
        store.record_retriggers(written.retriggers)
        store.ingest(written.files)
        wf = "hubspot-closed-won-quickbooks-invoice"
        rules = [AlertRule("rate", "failure_rate", 0.01, workflow_id=wf, min_runs=1, window_minutes=1440),
                 AlertRule("streak", "consecutive", 3, workflow_id=wf),
                 AlertRule("auth", "error_kind", 1, subject="auth", window_minutes=1440),
                 AlertRule("app", "app", 1, subject="QuickBooks", window_minutes=1440),
                 AlertRule("stuck", "stuck", 30), AlertRule("unresolved", "unresolved", 10)]
        for rule in rules:
            alerts.save_rule(store, SINGLE_USER, rule)
        names = dict(store.workflows())
        out: dict[str, float] = {}
        print(f"Alert check over {runs:,} demo runs, median of {repeat} (ms):", flush=True)
        for rule in store.alert_rules():
            times = []
            for _ in range(repeat):
                started = time.perf_counter()
                alerts.condition(store, rule, datetime.now(UTC), names)
                times.append((time.perf_counter() - started) * 1000)
            out[rule.kind] = statistics.median(times)
            print(f"  {alerts.KINDS[rule.kind]:<48}{out[rule.kind]:>9.1f}", flush=True)
        alerts.check(store, by="cli")  # opens the episodes: what follows is a tick's steady state
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            alerts.check(store, by="dashboard")
            times.append((time.perf_counter() - started) * 1000)
        out["check"] = statistics.median(times)
        print(f"  {'one whole check of the six rules':<48}{out['check']:>9.1f}", flush=True)
        close_store(store)
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
