"""Re-triggering: replay a run's original trigger payload as a new run, one at a time or in bulk."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import process
from .cancel import LIVE
from .executor import Executor, new_run_id
from .replay import FromStep, from_failed_step, payload_diff
from .store import RecordedRun, Retrigger, Store
from .workflows import Workflow

# What every confirmation says before a re-trigger (and the How it works page repeats).
CAVEAT = ("A re-trigger runs the workflow again as a new run with the original trigger payload: the payload from "
          "when the run first fired, not the source record as it is now.")
BULK_CAP = 10_000  # runs one bulk re-trigger from the dashboard takes; the count says when there are more
BULK_CONCURRENCY = 16  # runs replayed at a time

@dataclass
class BulkResult:
    requested: int
    outcomes: Counter = field(default_factory=Counter)  # status of each new run
    refused: dict[str, str] = field(default_factory=dict)  # original run ID -> why it was not re-triggered
    cancelled: int = 0
    seconds: float = 0.0
    new_runs: dict[str, str] = field(default_factory=dict)  # original run ID -> new run ID
    apps_ok: set[str] = field(default_factory=set)  # apps that answered a step
    apps_refused: set[str] = field(default_factory=set)  # apps that refused the credential (401/403)

    def note(self, run: dict) -> None:
        self.outcomes[run["status"]] += 1
        for step in run.get("steps", ()):
            if step.get("status") == "finished" and step.get("app"):
                self.apps_ok.add(step["app"])
        error = run.get("error") or {}
        if error.get("kind") == "auth" and error.get("step") is not None:
            self.apps_refused.add(run["steps"][error["step"]]["app"])


class Retriggerer:
    def __init__(self, store: Store, executor: Executor, definitions: dict[str, Workflow]) -> None:
        self.store = store
        self.executor = executor
        self.definitions = definitions

    def _roots(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The original each run replays: a re-trigger's payload is its original's, so re-triggering it again
        is another re-trigger of that original, which then shows as resolved when this one finishes."""
        roots = {r: r for r in run_ids}
        for _ in range(8):  # ours are one level deep; logs from elsewhere may chain further
            parents = self.store.parents(sorted(set(roots.values())))
            if not parents:
                break
            roots = {r: parents.get(root, root) for r, root in roots.items()}
        return roots

    def bulk(self, run_ids: Sequence[str], who: str, *, concurrency: int = 16,
             cancel: threading.Event | None = None,
             progress: Callable[[int, int], None] | None = None,
             since: datetime | None = None, payloads: Mapping[str, dict[str, Any]] | None = None,
             from_step: bool = False, on_start: Callable[[str, str], None] | None = None) -> BulkResult:
        """Re-trigger each run once with its own trigger payload; at most `concurrency` at a time, stoppable.

        `since`: when the user saw the runs (a confirmation opened); a run re-triggered after that,
        from another tab or by someone else, is refused rather than replayed twice.
        `payloads`: an edited payload per run (an edited replay; the ledger keeps the diff).
        `from_step`: each run re-runs from its failed step, the steps before reused (replay.from_failed_step).
        `on_start(run_id, new_run_id)`: as each replay starts (so it can be cancelled while it runs).
        """
        started = time.perf_counter()
        result = BulkResult(requested=len(run_ids))
        payloads = payloads or {}
        roots = self._roots(list(dict.fromkeys(run_ids)))
        claimed = self.store.claim(list(dict.fromkeys(roots.values())))
        planned: dict[str, Retrigger] = {}
        started_ids: set[str] = set()
        try:
            # The roots (lineage, workflow) and the runs asked for (the payload and steps they replay: an edited
            # replay's own payload when it is re-triggered in turn).
            originals = self.store.originals(sorted(claimed | set(run_ids)))
            recorded = self.store.recorded_runs(list(dict.fromkeys(run_ids))) if from_step else {}
            reruns: dict[str, FromStep] = {}
            meanwhile = self.store.retriggered_since(sorted(claimed), since) if since else {}
            stopped = self.store.paused()
            jobs = []
            taken: dict[str, str] = {}  # original -> the run of this batch that replays it
            for run_id in dict.fromkeys(run_ids):
                root = roots[run_id]
                if root in taken:
                    result.refused[run_id] = f"same original ({root}) as {taken[root]}, re-triggered once"
                elif root not in claimed:
                    result.refused[run_id] = "a re-trigger of this run is already under way"
                elif root in meanwhile:
                    result.refused[run_id] = f"re-triggered meanwhile as {meanwhile[root]}"
                elif root not in originals:
                    result.refused[run_id] = "no such run"
                elif originals[root][0] in stopped:
                    result.refused[run_id] = f"workflow {originals[root][0]} is paused"
                elif originals[root][0] not in self.definitions:
                    result.refused[run_id] = f"no definition for workflow {originals[root][0]}"
                elif from_step and isinstance(rerun := self._from_step(recorded.get(run_id), originals[root][0]),
                                              str):
                    result.refused[run_id] = rerun
                else:
                    if from_step and isinstance(rerun, FromStep):
                        reruns[run_id] = rerun
                    taken[root] = run_id
                    jobs.append(run_id)
            done = 0
            at = datetime.now(UTC)
            extra = {"retriggered_by": who, "retriggered_at": at.isoformat().replace("+00:00", "Z")}
            # Recorded before any run starts: the store reads a line's lineage only when it is one of these.
            planned = {run_id: self._planned(run_id, roots[run_id], who, at, originals, payloads, reruns)
                       for run_id in jobs}
            self.store.record_retriggers(list(planned.values()))
            # An original whose latest replay was interrupted: the steps that replay may have sent go again with
            # its idempotency keys.
            resend = self.store.interrupted_sends(sorted({roots[r] for r in jobs})) if jobs else {}

            def replay(run_id: str) -> dict:
                workflow_id, reference, _ = originals[roots[run_id]]
                payload = payloads.get(run_id, originals.get(run_id, originals[roots[run_id]])[2])
                rerun = reruns.get(run_id)
                mode = planned[run_id].mode
                said = extra if mode == "replay" else {**extra, "retrigger_mode": mode}  # the line's word only
                return self.executor.run(
                    self.definitions[workflow_id], payload, reference=reference, retrigger_of=roots[run_id],
                    run_id=planned[run_id].run_id, extra=said,
                    reuse=rerun.reuse if rerun else (), reused_from=run_id if rerun else None,
                    keys_from=resend.get(roots[run_id]))

            with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="fourgent-retrigger") as pool:
                pending: dict[Future, str] = {}
                queue = iter(jobs)
                while True:
                    while len(pending) < concurrency and not (cancel and cancel.is_set()):
                        next_id = next(queue, None)
                        if next_id is None:
                            break
                        started_ids.add(next_id)
                        # Cancellable from now on, before the thread reaches it (the executor shares the flag).
                        self.executor.live.start(planned[next_id].run_id)
                        if on_start:
                            on_start(next_id, planned[next_id].run_id)
                        pending[pool.submit(replay, next_id)] = next_id
                    if not pending:
                        break
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        run_id = pending.pop(fut)
                        run = fut.result()
                        result.note(run)
                        result.new_runs[run_id] = run["id"]
                        done += 1
                        if progress:
                            progress(done, len(jobs))
                result.cancelled = len(jobs) - done
        finally:
            # Never started (cancelled, or the bulk failed): not Fourgent's re-triggers after all.
            self.store.forget_retriggers([p.run_id for r, p in planned.items() if r not in started_ids])
            self.store.release(sorted(claimed))
        result.seconds = time.perf_counter() - started
        return result


    def _from_step(self, recorded: RecordedRun | None, workflow_id: str) -> FromStep | str:
        if recorded is None:
            return "no such run"
        return from_failed_step(recorded.status, recorded.error_step, recorded.steps, self.definitions.get(workflow_id))

    @staticmethod
    def _planned(run_id: str, root: str, who: str, at: datetime,
                 originals: Mapping[str, tuple[str, str | None, dict[str, Any]]],
                 payloads: Mapping[str, dict[str, Any]], reruns: Mapping[str, FromStep]) -> Retrigger:
        """The ledger's row for one re-trigger: how it was made, and an edit's diff against the run's payload."""
        mine = process.me()
        if run_id in payloads:
            before = originals.get(run_id, originals[root])[2]
            return Retrigger(new_run_id(), root, who, at, mode="edited",
                             payload_diff=payload_diff(before, payloads[run_id]), owner=mine)
        if run_id in reruns:
            return Retrigger(new_run_id(), root, who, at, mode="from step", from_step=reruns[run_id].step + 1,
                             owner=mine)
        return Retrigger(new_run_id(), root, who, at, owner=mine)


class BulkJob:
    """A bulk re-trigger on a background thread: progress to poll, a cancel to press, a result at the end.

    The dashboard starts one and polls it from a timed fragment, so the page stays responsive
    and a Cancel button can reach the running bulk.
    """

    def __init__(self, start: Callable[..., BulkResult], run_ids: Sequence[str], *,
                 concurrency: int = 16, since: datetime | None = None) -> None:
        """`start(run_ids, concurrency=, cancel=, progress=, since=, on_start=)` runs the bulk (who acts is its
        own)."""
        self.total = len(run_ids)
        self.done = 0
        self.result: BulkResult | None = None
        self.error: str | None = None
        self.started: dict[str, str] = {}  # original run ID -> its replay's ID, as each starts
        self._cancel = threading.Event()

        def work() -> None:
            batch = LIVE.batch(self._cancel, self.started)
            try:
                self.result = start(run_ids, concurrency=concurrency, cancel=self._cancel,
                                    progress=self._progress, since=since, on_start=self.started.__setitem__)
            except Exception as exc:  # noqa: BLE001 - shown to the user; the thread must not die silently
                # A refusal in words (ValueError: LogsNotWritable and the like) reads as it is.
                self.error = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            finally:
                LIVE.batch_done(batch)

        self.thread = threading.Thread(target=work, name="fourgent-bulk-retrigger", daemon=True)
        self.thread.start()

    def _progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total

    def cancel(self) -> None:
        """Start no more runs; those under way finish."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def finished(self) -> bool:
        return not self.thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self.thread.join(timeout)
        return self.finished
