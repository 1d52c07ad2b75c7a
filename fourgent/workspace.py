"""A data folder in use: its one store, and reading new log lines into it (what the dashboard and CLI share)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from . import demo, recovery, retention, workflows
from .access import RETENTION_POLICY, Action, Actor
from .audit import perform
from .config import Paths
from .config import paths as resolve_paths
from .connections import Connections, ConnectionState
from .executor import AUTH_STATUSES, Executor, log_writer
from .filters import RunFilter
from .logfiles import IngestReport, discover
from .recovery import Recovered
from .replay import payload_diff
from .retrigger import BulkResult, Retriggerer
from .sandbox import Sandbox, slug, transport
from .store import PruneReport, Store, StoreWriteFailed, open_store

DEMO_RUNS = 20_000  # seeded on a first start; FOURGENT_DEMO_RUNS overrides (0: none)


@dataclass
class Workspace:
    paths: Paths
    store: Store
    last_ingest: float = 0.0
    retention_due: datetime | None = None  # when the policy is next applied (None: ask the store)
    # The daily prune runs beside the pages (seconds at 10M, most of it DuckDB's checkpoint): while it holds the
    # store's writer, a refresh reads what is there instead of waiting to ingest.
    retention_thread: threading.Thread | None = field(default=None, repr=False)
    _refresh_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # What the latest ingest of logs/ could not read ("a.jsonl: Permission denied"): the pages say so until it can.
    unreadable: list[str] = field(default_factory=list)
    # Why new lines cannot be stored now (disk full): the pages say so, show what is stored, and refresh retries.
    ingest_problem: str | None = None
    demo_problem: str | None = None  # why the first start's demo runs could not be written (a read-only logs/)

    def ingest_logs(self, paths: list[Path] | None = None) -> IngestReport:
        """Read whatever is new under logs/ (or the given paths)."""
        report = self.store.ingest(paths or [self.paths.logs_dir], logs_dir=self.paths.logs_dir)
        self.last_ingest = time.monotonic()
        if paths is None:
            self.unreadable = report.unreadable
        return report

    def refresh(self, min_interval: float = 2.0) -> IngestReport | None:
        """Ingest new lines unless another thread is at it, it ran less than `min_interval` s ago or the daily
        prune is running; and once a day, start that prune in a thread of its own (apply_retention)."""
        if not self._refresh_lock.acquire(blocking=False):
            return None
        try:
            pruning = self.retention_thread is not None and self.retention_thread.is_alive()
            if not pruning and (self.retention_due is None or datetime.now(UTC) >= self.retention_due):
                policy = retention_to_apply(self)
                if policy is not None:
                    self.retention_thread = threading.Thread(target=apply_policy, args=(self, policy), daemon=True,
                                                             name="fourgent-retention")
                    self.retention_thread.start()
                    pruning = True
            if pruning or time.monotonic() - self.last_ingest < min_interval:
                return None
            try:
                report = self.ingest_logs()
            except StoreWriteFailed as exc:
                self.last_ingest = time.monotonic()  # tried again after min_interval, not on every rerun
                self.ingest_problem = str(exc)
                return None
            self.ingest_problem = None
            return report
        finally:
            self._refresh_lock.release()

    def seed_demo_if_empty(self, runs: int | None = None) -> bool:
        """On a first start (no runs, no logs) write demo logs so there is something to look at (0 turns it off)."""
        if runs is None:
            runs = int(os.environ.get("FOURGENT_DEMO_RUNS", DEMO_RUNS))
        if runs <= 0 or self.store.run_count() or any(discover([self.paths.logs_dir])):
            return False
        try:
            self.load_demo(runs)
        except (OSError, StoreWriteFailed) as exc:
            self.demo_problem = (f"No demo runs: they could not be written into {self.paths.logs_dir} "
                                 f"({exc.strerror if isinstance(exc, OSError) else exc}).")
            return False
        return True

    def load_demo(self, runs: int | None = None) -> IngestReport:
        """Write demo logs into logs/ and read them."""
        return self.load_logs(demo.write_demo(self.paths.logs_dir, runs or DEMO_RUNS))

    def load_logs(self, written: demo.DemoLogs) -> IngestReport:
        """Read demo logs, their re-triggers recorded first as the ones Fourgent ran."""
        self.store.record_retriggers(written.retriggers)
        return self.ingest_logs(written.files)


def retention_policy(paths: Paths) -> retention.Policy:
    """The policy in force in a data folder: FOURGENT_RETENTION_DAYS and its workflow definitions'
    `retention_days` (raises PolicyError or DefinitionError for a setting that cannot be used)."""
    return retention.policy({wf.id: wf.retention_days for wf in definitions_in(paths).values()
                             if wf.retention_days is not None})


def prune(ws: Workspace, actor: Actor, policy: retention.Policy, *, archive: Path | None = None,
          dry_run: bool = False, now: datetime | None = None) -> PruneReport:
    """Prune the runs `policy` no longer keeps as `actor` (an admin's action), archiving them under `archive`
    first; audited with the cutoffs, the counts and the file's size before and after. A dry run changes
    nothing and is not audited."""
    default, per_workflow = policy.cutoffs(now or datetime.now(UTC))
    if dry_run:
        return ws.store.prune(default, per_workflow, dry_run=True)
    target = f"runs started before {default:%Y-%m-%d %H:%M} UTC" if default else "runs of workflows with their own"
    return perform(ws.store, actor, Action.PRUNE, target,
                   lambda: ws.store.prune(default, per_workflow, archive=archive),
                   detail={"cutoff": default.isoformat() if default else None,
                           "workflow_cutoffs": {wf: at.isoformat() for wf, at in per_workflow.items()},
                           "archive_dir": str(archive) if archive else None},
                   outcome=lambda r: {k: v for k, v in r.to_dict().items() if k not in ("dry_run", "seconds")})


def apply_retention(ws: Workspace, now: datetime | None = None) -> PruneReport | None:
    """The dashboard's daily prune, if due (retention_to_apply): returns what it did, or None."""
    now = now or datetime.now(UTC)
    policy = retention_to_apply(ws, now)
    return apply_policy(ws, policy, now) if policy is not None else None


def retention_to_apply(ws: Workspace, now: datetime | None = None) -> retention.Policy | None:
    """The policy to apply now: one is in force and the store last pruned a day ago or more (remembered in the
    store, so a restart does not prune again). Sets when to ask next."""
    now = now or datetime.now(UTC)
    last = ws.store.last_pruned()
    if last is not None and now < last + retention.APPLY_EVERY:
        ws.retention_due = last + retention.APPLY_EVERY
        return None
    ws.retention_due = now + retention.APPLY_EVERY
    try:
        policy = retention_policy(ws.paths)
    except (retention.PolicyError, workflows.DefinitionError):
        return None  # shown on the How it works page; the dashboard keeps working and asks again in a day
    return policy if policy.in_force else None


def apply_policy(ws: Workspace, policy: retention.Policy, now: datetime | None = None) -> PruneReport | None:
    """Prune by `policy` as the retention policy's actor; a failure is audited (with why) and leaves the
    dashboard as it was, to try again in a day."""
    try:
        return prune(ws, RETENTION_POLICY, policy, now=now)
    except Exception:  # the audit has it; a page (or this thread) must not fall over for it
        return None


def open_workspace(data_dir: str | os.PathLike[str] | None = None, *, read_only: bool = False) -> Workspace:
    """The data folder's store, opened once per process (raises StoreBusy if another process holds it)."""
    p = resolve_paths(data_dir)
    if not read_only:
        p.ensure()
    return Workspace(p, open_store(p.store_url, read_only=read_only))


def hand_over(paths: Paths, sources: list[Path]) -> list[Path]:
    """Copy log files into logs/ for the process that holds the store; each appears whole (temp name, then rename)."""
    paths.ensure()
    placed = []
    for src in discover(sources):
        src = src.resolve()
        if src.is_relative_to(paths.logs_dir):
            continue  # already where the dashboard reads
        dest = paths.logs_dir / src.name
        if dest.exists() and not _same_start(src, dest):
            tag = hashlib.sha256(str(src).encode()).hexdigest()[:8]
            base = src.name.removesuffix(".gz").removesuffix(".jsonl")
            dest = paths.logs_dir / f"{base}-{tag}{src.name[len(base):]}"
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")  # not *.jsonl: never read half-copied
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
        placed.append(dest)
    return placed


def _same_start(a: Path, b: Path) -> bool:
    """b is an earlier copy of a (a may have grown since)."""
    size = min(a.stat().st_size, b.stat().st_size, 1 << 16)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read(size) == fb.read(size)


# ---------------------------------------------------------------- re-triggering

SANDBOX_URL = "http://sandbox"  # base URLs under this are answered in-process by the demo apps
_sandbox: Sandbox | None = None


def demo_sandbox() -> Sandbox:
    """The process's demo apps; each accepts the token "demo-<app>"."""
    global _sandbox
    if _sandbox is None:
        _sandbox = Sandbox()
        for wf in workflows.load(workflows.BUILTIN_DIR).values():
            for app in wf.apps:
                _sandbox.tokens[slug(app)] = demo_token(app)
    return _sandbox


def definitions(ws: Workspace) -> dict[str, workflows.Workflow]:
    return definitions_in(ws.paths)


def definitions_in(paths: Paths) -> dict[str, workflows.Workflow]:
    """A data folder's workflow definitions (the demo's copied in on first use)."""
    folder = paths.data_dir / "workflows"
    workflows.ensure_builtin(folder)
    return workflows.load(folder)


def connections(ws: Workspace) -> Connections:
    """The workspace's connections; on first use, every app of the definitions points at the demo apps.
    An app a definition added later gets a row with no credential (Missing), for the user to connect."""
    conns = Connections(ws.store, ws.paths.key_file)
    apps = sorted({a for wf in definitions(ws).values() for a in wf.apps})
    stored = {s.app for s in conns.states()}
    if not stored:
        for app in apps:
            # The demo's story: QuickBooks' token has expired, so its runs fail until it is reconnected.
            stale = "-expired" if app == demo.EXPIRED_APP else ""
            conns.save(app, f"{SANDBOX_URL}/{slug(app)}", f"{demo_token(app)}{stale}")
        # The demo apps accept their demo tokens by construction: they start Connected, but the expired one.
        conns.record(ok=[a for a in apps if a != demo.EXPIRED_APP], refused=[demo.EXPIRED_APP])
    else:
        for app in apps:
            if app not in stored:
                conns.save(app, "", None)
    return conns


def demo_token(app: str) -> str:
    """The token a demo app accepts (they are public: the demo apps guard nothing)."""
    return f"demo-{slug(app)}"


SINGLE_RUNS_LISTED = 20  # an audit entry names the runs of a re-trigger up to this many


class LogsNotWritable(ValueError):
    """An action that writes run log lines, refused before it starts: the logs folder cannot be written."""


def logs_unwritable(paths: Paths) -> str | None:
    """Why logs/ cannot take a new file (by trying, as file modes and read-only mounts both decide), or None."""
    try:
        paths.logs_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=paths.logs_dir, prefix=".fourgent-write-check-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def retrigger(ws: Workspace, actor: Actor, run_ids: Sequence[str], *, bulk_filter: str | None = None,
              concurrency: int = 16, cancel: threading.Event | None = None,
              progress: Callable[[int, int], None] | None = None, since: datetime | None = None,
              client: httpx.Client | None = None, payload: dict[str, Any] | None = None,
              from_step: bool = False, on_start: Callable[[str, str], None] | None = None) -> BulkResult:
    """Re-trigger runs as `actor` (an operator's action), note which apps answered or refused their
    credential, then read the new runs. `bulk_filter`: the Runs page link a bulk re-trigger took its runs
    from, recorded in the audit with the count. `payload`: one run replayed with this edited payload (checked
    by replay.parse_payload first); `from_step`: each run re-run from its failed step."""
    if payload is not None and len(run_ids) != 1:
        raise ValueError("An edited payload replays one run")
    if payload is not None and from_step:  # the reused outputs came from the old payload
        raise ValueError("An edited payload replays the whole run: it cannot reuse steps run with the old one")

    if (why := logs_unwritable(ws.paths)) is not None:
        raise LogsNotWritable(f"Nothing was re-triggered: a re-trigger writes its run log into {ws.paths.logs_dir}, "
                              f"and it cannot be written ({why}).")

    def do() -> BulkResult:
        result = retriggerer(ws, client).bulk(run_ids, actor.who, concurrency=concurrency, cancel=cancel,
                                              progress=progress, since=since,
                                              payloads={run_ids[0]: payload} if payload is not None else None,
                                              from_step=from_step, on_start=on_start)
        connections(ws).record(ok=result.apps_ok, refused=result.apps_refused)
        try:
            ws.ingest_logs()
        except StoreWriteFailed as exc:  # the runs happened and their lines are in logs/: read in once it can
            ws.ingest_problem = str(exc)
        return result

    bulk = bulk_filter is not None
    detail: dict[str, object] = {"count": len(run_ids)}
    if bulk:
        detail["filter"] = bulk_filter
    if len(run_ids) <= SINGLE_RUNS_LISTED:
        detail["runs"] = list(run_ids)
    if payload is not None:  # which fields changed, not their values: the ledger keeps the diff beside the run
        detail["mode"] = "edited"
        detail["changed"] = [c["path"] for c in payload_diff(ws.store.originals(run_ids).get(
            run_ids[0], ("", None, {}))[2], payload)][:SINGLE_RUNS_LISTED]
    elif from_step:
        detail["mode"] = "from step"
    return perform(ws.store, actor, Action.RETRIGGER_BULK if bulk else Action.RETRIGGER,
                   bulk_filter if bulk else ", ".join(run_ids[:3]), do, detail=detail,
                   outcome=lambda r: {"outcomes": dict(r.outcomes), "refused": len(r.refused),
                                      "cancelled": r.cancelled})


def save_connection(ws: Workspace, actor: Actor, app: str, base_url: str, token: str | None) -> tuple[bool, str]:
    """Set an app's base URL and credential as `actor` (an admin's action), then test it with one call, so a
    wrong token shows as Expired at once, not as Connected; returns the test's (connected, answer). The
    audit never holds the secret."""

    def do() -> tuple[bool, str]:
        connections(ws).save(app, base_url, token)
        return _check_connection(ws, app) if token else (False, "No credential to test.")

    return perform(ws.store, actor, Action.CONNECTION_REPLACE, app, do,
                   detail={"base_url": without_secrets(base_url), "credential": "replaced" if token else "none"},
                   outcome=lambda r: {"tested": r[0], "answer": r[1]})


def without_secrets(url: str) -> str:
    """A URL as the audit keeps it: no user, password, query or fragment (where keys sometimes hide)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    hidden = " (query removed)" if parts.query or parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")) + hidden


def recover_interrupted(ws: Workspace) -> Recovered:
    """The replays a process that is gone left running (a killed dashboard or CLI): marked failed, kind
    interrupted, in the run log, then read in (recovery.py). The dashboard does this on start, the CLI before
    a re-trigger."""
    found = recovery.recover(ws.store, retrigger_log(ws))
    if found.interrupted:
        with contextlib.suppress(StoreWriteFailed):  # read in by the next refresh, once the store can write
            ws.ingest_logs()
    return found


def retrigger_log(ws: Workspace) -> Callable[[dict], None]:
    """Where re-triggers (and the lines that end interrupted ones) are written: one file a day under logs/."""
    return log_writer(ws.paths.logs_dir / f"retriggers-{datetime.now(UTC):%Y-%m-%d}.jsonl")


def retriggerer(ws: Workspace, client: httpx.Client | None = None) -> Retriggerer:
    """A re-triggerer whose new runs are written into logs/, where the next ingest reads them."""
    client = client or httpx.Client(mounts={SANDBOX_URL: transport(demo_sandbox())})
    executor = Executor(connections(ws).all(), retrigger_log(ws), client=client)
    return Retriggerer(ws.store, executor, definitions(ws))


def connection_states(ws: Workspace) -> tuple[list[ConnectionState], dict[str, tuple[int, datetime]]]:
    """Each connection's state, Expired also when runs failed with auth after its credential was last set;
    and the auth failures of the last 7 days by app (count, latest)."""
    conns = connections(ws)
    failures = ws.store.auth_failures_by_app()
    expired = {s.app for s in conns.states()
               if s.app in failures and s.updated_at and failures[s.app][1] > s.updated_at}
    return conns.states(expired=expired), failures


def check_connection(ws: Workspace, actor: Actor, app: str) -> tuple[bool, str]:
    """Call the app's base URL with its credential as `actor` (an admin's action); record the answer (a
    refusal marks it Expired). Returns (connected, what it answered); the credential never appears in it."""
    return perform(ws.store, actor, Action.CONNECTION_TEST, app, lambda: _check_connection(ws, app),
                   outcome=lambda r: {"connected": r[0], "answer": r[1]})


def _check_connection(ws: Workspace, app: str) -> tuple[bool, str]:
    conns = connections(ws)
    conn = conns.get(app)
    if conn is None or not conn.base_url:
        return False, "No base URL: set one and save it first."
    try:
        with httpx.Client(mounts={SANDBOX_URL: transport(demo_sandbox())}, timeout=10) as client:
            answer = client.get(conn.base_url.rstrip("/") + "/",
                                headers={"Authorization": f"Bearer {conn.token}"} if conn.token else {})
    except httpx.HTTPError as exc:
        return False, f"Could not reach it: {type(exc).__name__}"
    if answer.is_success:
        conns.record(ok=[app])
        return True, f"Connected: {answer.status_code} {answer.reason_phrase}"
    if answer.status_code in AUTH_STATUSES:
        conns.record(refused=[app])
    return False, f"Refused: {answer.status_code} {answer.reason_phrase}"


@dataclass(frozen=True)
class BulkPlan:
    """What a bulk re-trigger of the unresolved failures under a filter would do, before it runs: the ones a
    replay cannot fix now are left out unless the user includes them on purpose."""

    waiting: dict[str, int]  # auth failures per app whose connection is still Expired or Missing
    unfixable: int  # validation failures whose payload lacks the field their error names

    @property
    def left_out(self) -> int:
        return sum(self.waiting.values()) + self.unfixable


def broken_apps(ws: Workspace) -> list[str]:
    """Apps whose connection is Expired or Missing: an auth failure there would fail again."""
    states, _ = connection_states(ws)
    return sorted(s.app for s in states if s.credential in ("Expired", "Missing"))


def bulk_plan(ws: Workspace, selection: RunFilter) -> BulkPlan:
    waiting, unfixable = ws.store.futile_split(selection, broken_apps(ws))
    return BulkPlan(waiting, unfixable)
