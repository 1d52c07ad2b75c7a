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

__all__ = ["explore_bench", "main", "prune_bench", "refresh_bench", "retrigger_bench"]


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
