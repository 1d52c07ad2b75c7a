"""Runs a workflow definition against a payload over HTTP, and writes the run as run-log lines.

Retries use tenacity (stop after the step's attempts or the run's deadline; full-jitter
exponential backoff, or the server's Retry-After when it sends one) rather than a
hand-made loop. Credentials go only into the Authorization header: never into a record,
a log line or an error message.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from .cancel import LIVE, CancelFlag, LiveRuns
from .spec import CANCELLED_KIND
from .workflows import RetryPolicy, Step, Workflow

# How an HTTP answer is read (the How it works page shows these, so it cannot drift from them).
MAX_ANSWER_BYTES = 10 << 20  # an app's answer past this is not read on (a step's output is kept in its run)
AUTH_STATUSES = frozenset({401, 403})  # -> kind "auth", not retried: a retry cannot fix a credential


def retryable(status: int) -> bool:
    """429 and 5xx are "unavailable" and retried; timeouts and refused connections are too."""
    return status == 429 or status >= 500


@dataclass(frozen=True)
class Connection:
    app: str
    base_url: str
    token: str | None = None

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        return f"Connection(app={self.app!r}, base_url={self.base_url!r}, token={'***' if self.token else None})"


class _Unavailable(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Cancelled(Exception):
    def __init__(self, who: str) -> None:
        super().__init__(f"Cancelled by {who or 'someone unnamed'}")


class _Failed(Exception):
    def __init__(self, kind: str, message: str, output: Any = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.output = output


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")


def _fill_path(template: str, payload: Mapping[str, Any]) -> str:
    """Payload values in a URL path, each percent-encoded whole: a value with / ? # or .. stays one segment."""
    return _PLACEHOLDER.sub(lambda m: quote(str(payload.get(m.group(1), "")), safe=""), template)


def _fill(template: Any, payload: Mapping[str, Any]) -> Any:
    """Put payload values into a path or body: a whole "{field}" keeps the value's JSON type."""
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template)
        if whole:
            return payload.get(whole.group(1))
        return _PLACEHOLDER.sub(lambda m: str(payload.get(m.group(1), "")), template)
    if isinstance(template, dict):
        return {k: _fill(v, payload) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, payload) for v in template]
    return template


def retry_after_seconds(value: str | None, cap: float) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), cut to `cap`; None if absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds()
        except (TypeError, ValueError):
            return None
    return max(0.0, min(seconds, cap))


def _wait(policy: RetryPolicy, deadline: float) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Unavailable) and exc.retry_after is not None:
            pause = exc.retry_after
        else:  # full jitter: anywhere from 0 to the exponential ceiling
            ceiling = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** (state.attempt_number - 1))
            pause = random.uniform(0, ceiling)
        return max(0.0, min(pause, deadline - time.monotonic()))  # never sleep past the run's deadline

    return wait


class _PastDeadline(stop_base):
    """Stop once the run's deadline (a time.monotonic() reading) has passed."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline

    def __call__(self, retry_state: RetryCallState) -> bool:
        return time.monotonic() >= self.deadline


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:20]}"


class Executor:
    """Replays workflows; one httpx client (connection pooling) for all runs.

    `sleep`: how backoff and Retry-After waits pass; by default on the run's cancel flag, so a cancel lands at
    once mid-wait. A given one (tests) is called, then the flag is checked."""

    def __init__(self, connections: Mapping[str, Connection], write: Callable[[dict], None], *,
                 client: httpx.Client | None = None, sleep: Callable[[float], None] | None = None,
                 live: LiveRuns = LIVE) -> None:
        self.connections = connections
        self.write = write
        self.client = client or httpx.Client()
        self.sleep = sleep
        self.live = live

    def run(self, wf: Workflow, payload: dict[str, Any], *, reference: str | None = None,
            retrigger_of: str | None = None, run_id: str | None = None,
            extra: Mapping[str, Any] | None = None, reuse: Sequence[Mapping[str, Any]] = (),
            reused_from: str | None = None, keys_from: tuple[str, Sequence[int]] | None = None) -> dict[str, Any]:
        """Execute `wf` with `payload`; every state change is written as a run-log line. Returns the last one.

        `reuse`: recorded steps of `reused_from` (the first len(reuse) steps, finished, with their outputs),
        taken as this run's own without calling their apps; execution starts at the step after them.
        `keys_from`: an interrupted run and the steps it may have sent: those send its idempotency keys, not this
        run's, so an app that honours them does not act twice (recovery.py)."""
        run_id = run_id or new_run_id()
        flag = self.live.start(run_id)
        try:
            return self._run(wf, payload, reference, retrigger_of, run_id, extra, reuse, reused_from, flag,
                             keys_from)
        finally:
            self.live.end(run_id)

    def _run(self, wf: Workflow, payload: dict[str, Any], reference: str | None, retrigger_of: str | None,
             run_id: str, extra: Mapping[str, Any] | None, reuse: Sequence[Mapping[str, Any]],
             reused_from: str | None, flag: CancelFlag,
             keys_from: tuple[str, Sequence[int]] | None = None) -> dict[str, Any]:
        started = _now()
        record: dict[str, Any] = {
            "id": run_id, "reference": reference,
            "workflow": {"id": wf.id, "source": wf.source, "destination": wf.destination,
                         "source_app": wf.source_app, "destination_app": wf.destination_app},
            "status": "pending", "started_at": started, "updated_at": started,
            "trigger_payload": payload, "steps": [], "attempt": 1,
            # Every call the engine made (retries included): step, attempt, when, how long, the answer or error.
            "attempt_log": [],
        }
        if retrigger_of:
            record["retrigger_of"] = retrigger_of
        if reuse:  # which steps were not called: the run's page shows them as reused
            record["reused_steps"] = {"from": reused_from, "count": len(reuse)}
        if keys_from:
            record["idempotency_keys_from"] = {"run": keys_from[0], "steps": [i + 1 for i in keys_from[1]]}
        record.update(extra or {})
        self._emit(record)
        if flag.is_set():
            return self._cancelled(record, flag, None)
        skip_field = wf.skip_if.get("field") if wf.skip_if else None
        skip_value = payload.get(skip_field) if skip_field is not None else None  # no field: no value
        if wf.skip_if and skip_value == wf.skip_if.get("equals"):
            return self._end(record, "skipped", skip_reason=wf.skip_if.get("reason") or "skip condition met")
        missing = [f for f in wf.required if payload.get(f) in (None, "")]
        if missing:
            message = f"Missing required field: {missing[0]}" + (
                f" (and {', '.join(missing[1:])})" if len(missing) > 1 else "")
            return self._end(record, "failed", error={"message": message, "step": None, "kind": "validation"})
        record["status"] = "running"
        self._emit(record)
        deadline = time.monotonic() + wf.retry.deadline_s
        result = None
        for index, step in enumerate(wf.steps):
            if index < len(reuse):
                outcome = {"name": step.name, "app": step.app, "status": "finished",
                           "attempts": reuse[index].get("attempts") or 1, "started_at": _now(),
                           "input": reuse[index].get("input"), "output": reuse[index].get("output")}
                outcome["finished_at"] = outcome["started_at"]
            elif flag.is_set():
                return self._cancelled(record, flag, index)
            else:
                keyed = keys_from[0] if keys_from and index in keys_from[1] else record["id"]
                outcome = self._step(record, index, step, payload, wf.retry, deadline, flag, keyed)
            record["steps"].append(outcome)
            self._emit(record)
            if outcome["status"] == "failed":
                return self._end(record, "failed", error={"message": outcome["error"], "step": index,
                                                          "kind": outcome.pop("_kind")})
            result = outcome.get("output")
        return self._end(record, "finished", result=result)

    def _cancelled(self, record: dict[str, Any], flag: CancelFlag, step: int | None) -> dict[str, Any]:
        """Ended failed, kind cancelled: the product's five statuses stay as they are."""
        return self._end(record, "failed", error={"message": str(_Cancelled(flag.who)), "step": step,
                                                  "kind": CANCELLED_KIND})

    def _pause(self, flag: CancelFlag) -> Callable[[float], None]:
        """A wait between attempts that a cancel cuts short."""
        def pause(seconds: float) -> None:
            if self.sleep is None:
                flag.wait(seconds)
            else:
                self.sleep(seconds)
            if flag.is_set():
                raise _Cancelled(flag.who)
        return pause

    def _step(self, record: dict[str, Any], index: int, step: Step, payload: Mapping[str, Any],
              policy: RetryPolicy, deadline: float, flag: CancelFlag, keyed: str) -> dict[str, Any]:
        path, body = _fill_path(step.path, payload), _fill(step.body, payload)
        out: dict[str, Any] = {"name": step.name, "app": step.app, "status": "running", "attempts": 0,
                               "started_at": _now(), "input": {"method": step.method, "path": path, "body": body}}
        conn = self.connections.get(step.app)
        if conn is None or not conn.token:
            out.update(status="failed", finished_at=_now(), _kind="auth",
                       error=f"No credential for {step.app}: connect it in Connections")
            return out
        headers = {"Authorization": f"Bearer {conn.token}", "Accept": "application/json"}
        if step.method in ("POST", "PUT", "PATCH"):
            # The same key on every retry: the app can tell a retry from a second request.
            headers["Idempotency-Key"] = f"{keyed}-{index}"
        url = conn.base_url.rstrip("/") + path

        def call() -> Any:
            if flag.is_set():  # no call made: not an attempt
                raise _Cancelled(flag.who)
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # no call made: not an attempt
                raise _Failed("unavailable", f"The run's deadline of {policy.deadline_s:g} s passed after "
                                             f"{out['attempts']} attempt{'s' if out['attempts'] != 1 else ''}")
            out["attempts"] += 1
            entry: dict[str, Any] = {"step": index, "attempt": out["attempts"], "started_at": _now()}
            record["attempt_log"].append(entry)
            began = time.monotonic()
            try:
                answer = attempt(remaining)
                entry["outcome"] = "ok"
                return answer
            except (_Unavailable, _Failed) as exc:
                entry["outcome"] = str(exc)
                raise
            finally:
                entry["duration_ms"] = round((time.monotonic() - began) * 1000)

        def attempt(remaining: float) -> Any:
            # httpx's timeout bounds each read, not the whole answer: a server trickling a byte a second never
            # trips it. So the body is read in chunks against one cap for the whole attempt (the step's timeout,
            # within the run's deadline). (A cancel waits for the answer: the call has been made, its output counts.)
            cap = min(policy.timeout_s, remaining)
            ends = time.monotonic() + cap
            try:
                with self.client.stream(step.method, url, json=body, headers=headers, timeout=cap) as response:
                    record["attempt_log"][-1]["status_code"] = response.status_code
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if time.monotonic() > ends:
                            raise _Unavailable(f"{step.app}'s answer did not arrive whole within {cap:.1f} s")
                        if size > MAX_ANSWER_BYTES:
                            raise _Failed("logic", f"{step.app} answered more than {MAX_ANSWER_BYTES:,} bytes")
            except httpx.TimeoutException:
                raise _Unavailable(f"Timed out after {cap:g}s waiting for {step.app}") from None
            except httpx.TransportError as exc:
                raise _Unavailable(f"Could not reach {step.app} ({type(exc).__name__})") from None
            except (TypeError, ValueError) as exc:  # a body JSON cannot carry (NaN from a log's payload): not sent
                raise _Failed("logic", f"The request to {step.app} could not be built: {exc}") from None
            content = b"".join(chunks)
            try:
                answer = json.loads(content)
            except ValueError:
                answer = content.decode(response.encoding or "utf-8", "replace")[:2000]
            if response.status_code in AUTH_STATUSES:
                raise _Failed("auth", f"Credential for {step.app} expired or revoked ({response.status_code}) — "
                                      "reconnect it in Connections", answer)
            if retryable(response.status_code):
                raise _Unavailable(
                    f"{step.app} answered {response.status_code} {response.reason_phrase}",
                    retry_after_seconds(response.headers.get("retry-after"), policy.retry_after_cap_s))
            if not response.is_success:
                raise _Failed("logic", f"{step.app} answered {response.status_code} {response.reason_phrase}",
                              answer)
            return answer

        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts) | _PastDeadline(deadline),
            wait=_wait(policy, deadline), retry=retry_if_exception_type(_Unavailable), reraise=True,
            sleep=self._pause(flag),
        )
        try:
            out["output"] = retrying(call)
            out["status"] = "finished"
        except _Unavailable as exc:
            out.update(status="failed", _kind="unavailable",
                       error=f"{exc} after {out['attempts']} attempt{'s' if out['attempts'] != 1 else ''}")
        except _Cancelled as exc:
            out.update(status="failed", _kind=CANCELLED_KIND, error=str(exc))
        except _Failed as exc:
            out.update(status="failed", _kind=exc.kind, error=str(exc))
            if exc.output is not None:
                out["output"] = exc.output
        out["finished_at"] = _now()
        return out

    def _end(self, record: dict[str, Any], status: str, **fields: Any) -> dict[str, Any]:
        record.update(status=status, finished_at=_now(), **fields)
        record["updated_at"] = record["finished_at"]
        self._emit(record)
        return record

    def _emit(self, record: dict[str, Any]) -> None:
        line = dict(record, steps=[{k: v for k, v in s.items() if not k.startswith("_")} for s in record["steps"]])
        line["updated_at"] = _now()
        self.write(line)


def log_writer(path: Path) -> Callable[[dict], None]:
    """Append each record as one run-log line to `path` (a single write per line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()  # bulk re-triggers write from many threads: one whole line at a time

    def write(record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        with lock, open(path, "ab") as f:
            f.write(data)

    return write
