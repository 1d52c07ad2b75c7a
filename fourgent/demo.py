"""Realistic demo run logs: six integrations, every status and error kind, snapshots and re-triggers."""

from __future__ import annotations

import itertools
import json
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from .store.records import Retrigger


@dataclass(frozen=True)
class Workflow:
    id: str
    source: str
    destination: str
    source_app: str
    destination_app: str
    steps: tuple[tuple[str, str | None], ...]  # (step name, app); no app for a step that calls none


WORKFLOWS: tuple[Workflow, ...] = (
    Workflow("hubspot-closed-won-quickbooks-invoice", "HubSpot Closed Won", "QuickBooks Invoice", "HubSpot",
             "QuickBooks", (("Fetch deal", "HubSpot"), ("Find or create customer", "QuickBooks"),
                            ("Create invoice", "QuickBooks"), ("Write back invoice ID", "HubSpot"))),
    Workflow("stripe-payment-xero-invoice", "Stripe Payment Succeeded", "Xero Invoice", "Stripe", "Xero",
             (("Fetch charge", "Stripe"), ("Match contact", "Xero"), ("Create invoice", "Xero"),
              ("Mark paid", "Xero"))),
    Workflow("shopify-order-slack-message", "Shopify Order Created", "Slack Message", "Shopify", "Slack",
             (("Fetch order", "Shopify"), ("Format message", None), ("Post message", "Slack"))),
    Workflow("pipedrive-deal-sheets-row", "Pipedrive Deal Won", "Google Sheets Row", "Pipedrive", "Google Sheets",
             (("Fetch deal", "Pipedrive"), ("Append row", "Google Sheets"))),
    Workflow("zendesk-ticket-jira-issue", "Zendesk Ticket Escalated", "Jira Issue", "Zendesk", "Jira",
             (("Fetch ticket", "Zendesk"), ("Map priority", None), ("Create issue", "Jira"),
              ("Link ticket", "Zendesk"))),
    Workflow("typeform-response-salesforce-lead", "Typeform New Response", "Salesforce Lead", "Typeform",
             "Salesforce", (("Parse answers", "Typeform"), ("Deduplicate lead", "Salesforce"),
                            ("Create lead", "Salesforce"))),
)

# Company names that exercise what a table must survive: unicode, quotes, commas,
# markup and spreadsheet formulas. None of it may ever render as HTML or Markdown.
COMPANIES = (
    "Acme Corp", "Initech", "Globex", "Umbrella", "Hooli", "Stark Industries", "Wayne Enterprises",
    "Müller & Söhne GmbH", "Ørsted Nordic", "Société Générale d'Études", "株式会社サンプル", "Zürich Analytics",
    "O'Reilly & Sons", "Smith, Jones; Partners", '"Quoted" Holdings', "Δelta Labs", "🚀 Rocket Foods",
    "<script>alert(1)</script> Ltd", "**Bold** Ventures", "[x](javascript:alert(1)) LLC",
    "![](http://example.com/x.png) Media", "=HYPERLINK(\"http://x\") Inc", "+1 Telecom", "@Handle Co",
)
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD")
SKIP_REASONS = ("Deal pipeline is not 'Sales'", "Amount is 0", "Test record", "Duplicate event within 5 minutes")
# Required by every demo definition (fourgent/workflow_defs/): a validation failure's payload lacks one,
# so its replay fails the same way, as a replay of the same payload must.
MISSING_FIELDS = ("contact_email", "amount")

# The demo's story: QuickBooks' token expired this many hours before "now"; every run that
# reached QuickBooks since failed with auth, until the token is reconnected and the runs re-triggered.
EXPIRED_APP = "QuickBooks"
EXPIRED_HOURS = 6

STATUS_WEIGHTS = (("finished", 0.86), ("failed", 0.07), ("skipped", 0.05), ("running", 0.012), ("pending", 0.008))
KIND_WEIGHTS = (("unavailable", 0.4), ("validation", 0.25), ("auth", 0.2), ("logic", 0.15))


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    x = rng.random()
    for value, weight in weighted:
        x -= weight
        if x < 0:
            return value
    return weighted[-1][0]


def _error(kind: str, app: str, rng: random.Random) -> tuple[str, int]:
    """(message, attempts) for a failure of `kind` talking to `app`."""
    if kind == "auth":
        return f"401 Unauthorized: access token expired for {app}. Reconnect the app in Connections.", 1
    if kind == "unavailable":
        if rng.random() < 0.6:
            return f"{app} API temporarily unavailable (503 Service Unavailable) after 3 attempts", 3
        return f"Timed out after 30s waiting for {app}", 3
    return rng.choice((
        "Unhandled currency 'JPY' in line item mapping",
        "Customer name exceeds 100 characters",
        f"Line item quantity {rng.randint(-5, -1)} is negative",
    )), 1


class RunFactory:
    """Builds run-log records; deterministic for a seed."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.seed = seed

    def run(self, n: int, started: datetime, now: datetime, *, status: str | None = None,
            workflow: Workflow | None = None, payload: dict | None = None, retrigger_of: str | None = None,
            run_id: str | None = None, expired_app: str | None = None, kind: str | None = None) -> dict:
        rng = self.rng
        wf = workflow or rng.choice(WORKFLOWS)
        if payload is None:
            record = rng.randint(1_000_000, 9_999_999)
            company = rng.choice(COMPANIES)
            payload = {
                "record_id": str(record),
                "name": f"{company} – Deal {record}",
                "amount": round(rng.uniform(50, 90_000), 2),
                "currency": rng.choice(CURRENCIES),
                "contact_email": f"buyer{record}@example.com",
                "owner": rng.choice(("ana@example.com", "li.wei@example.com", "sam@example.com")),
            }
        if status is None:
            status = _pick(rng, STATUS_WEIGHTS)
            # A run still going is a recent one.
            if status in ("running", "pending") and now - started > timedelta(hours=2):
                status = "finished"
        record = payload.get("record_id", str(n))
        reference = rng.choice((payload.get("name"), payload.get("name"), record, record, "", None))
        run = {
            "id": run_id or f"run_{int(started.timestamp() * 1000):011x}{self.seed % 16:x}{n % 4096:03x}",
            "reference": reference,
            "workflow": {"id": wf.id, "source": wf.source, "destination": wf.destination,
                         "source_app": wf.source_app, "destination_app": wf.destination_app},
            "status": status,
            "started_at": _iso(started),
            "trigger_payload": payload,
        }
        steps, t = [], started
        fail_at = rng.randrange(len(wf.steps)) if status == "failed" else None
        stop_at = {"running": rng.randrange(len(wf.steps)), "pending": 0}.get(status)
        kind = (kind or _pick(rng, KIND_WEIGHTS)) if status == "failed" else None
        if kind == "validation":
            fail_at = 1 if len(wf.steps) > 1 else 0
        expired_at = next((i for i, (_, app) in enumerate(wf.steps) if expired_app and app == expired_app), None)
        if expired_at is not None and status in ("finished", "failed"):
            status, kind, fail_at = "failed", "auth", expired_at
            run["status"] = status
        missing = None
        if kind == "validation":
            missing = (next((f for f in MISSING_FIELDS if payload.get(f) in (None, "")), None)
                       or rng.choice(MISSING_FIELDS))
            run["trigger_payload"] = payload = {**payload, missing: None}
        error = None
        for i, (name, app) in enumerate(wf.steps):
            if status == "pending" or (stop_at is not None and i > stop_at) or (fail_at is not None and i > fail_at):
                break
            if status == "skipped" and i > 0:
                break
            took = timedelta(milliseconds=rng.randint(80, 2400))
            step: dict[str, object] = {"name": name, "app": app, "status": "finished", "attempts": 1,
                                       "started_at": _iso(t)}
            step["input"] = {"record_id": record} if i == 0 else {"record_id": record, "from_step": i - 1}
            if i == fail_at:
                assert kind is not None  # every path that sets fail_at sets kind too
                message, attempts = (f"Missing required field: {missing}", 1) if missing else \
                    _error(kind, app or wf.destination_app, rng)
                if kind == "unavailable":
                    took *= attempts
                step.update(status="failed", attempts=attempts, error=message)
                error = {"message": message, "step": i, "kind": kind}
            elif i == stop_at and status == "running":
                step["status"] = "running"
            else:
                step["output"] = {"ok": True, "id": f"obj_{record}_{i}"}
            t += took
            if step["status"] != "running":
                step["finished_at"] = _iso(t)
            steps.append(step)
        run["steps"] = steps
        if status in ("finished", "failed", "skipped"):
            run["finished_at"] = _iso(t)
        if status == "finished":
            run["result"] = {"created_id": f"obj_{record}_final", "url": f"https://app.example.com/{wf.id}/{record}"}
        if error:
            run["error"] = error
        if status == "skipped":
            run["skip_reason"] = rng.choice(SKIP_REASONS)
        if retrigger_of:
            run["retrigger_of"] = retrigger_of
            run["retriggered_by"] = rng.choice(("ana@example.com", "sam@example.com"))
            run["retriggered_at"] = run["started_at"]
        return run


def generate(runs: int, *, seed: int = 7, days: float = 30.0, now: datetime | None = None) -> Iterator[dict]:
    """Run records, oldest first; about 3% written twice (running, then done) and some failures re-triggered."""
    factory = RunFactory(seed)
    rng = factory.rng
    now = now or datetime.now(UTC)
    start = now - timedelta(days=days)
    span = (now - start).total_seconds()
    for n in range(runs):
        started = start + timedelta(seconds=span * (n + rng.random()) / max(runs, 1))
        # The newest few are still in flight, so every demo has Running and Pending runs to watch.
        in_flight = ("running", "pending")[n % 2] if runs - n <= 6 and runs >= 20 else None
        if runs >= 100 and runs - n == 40:
            in_flight = "running"  # one run stuck: it started long ago and never finished
        expired = EXPIRED_APP if now - started < timedelta(hours=EXPIRED_HOURS) else None
        run = factory.run(n, started, now, status=in_flight, expired_app=expired)
        if run["status"] in ("finished", "failed") and rng.random() < 0.03:
            # The engine wrote a snapshot while the run was in progress; the final one supersedes it.
            early = dict(run, status="running", updated_at=run["started_at"])
            early.pop("finished_at", None)
            early.pop("result", None)
            early.pop("error", None)
            early["steps"] = [dict(s, status="running") for s in run["steps"][:1]]
            for s in early["steps"]:
                s.pop("finished_at", None)
                s.pop("error", None)
            yield early
            run["updated_at"] = run["finished_at"]
        yield run
        if run["status"] == "failed" and rng.random() < 0.25 and not expired:
            later = started + timedelta(minutes=rng.randint(5, 600))
            if later < now:
                wf = next(w for w in WORKFLOWS if w.id == run["workflow"]["id"])
                # The same payload: a validation failure fails again; other causes may have been fixed.
                invalid = run["error"]["kind"] == "validation"
                again = factory.run(n, later, now, workflow=wf, payload=run["trigger_payload"],
                                    status="failed" if invalid else rng.choice(("finished", "finished", "failed")),
                                    kind="validation" if invalid else None, retrigger_of=run["id"],
                                    run_id=f"{run['id']}_rt1")
                again["reference"] = run["reference"]
                yield again


class DemoExists(FileExistsError):
    """Demo logs of this seed are in the folder already; the message names the file."""


@dataclass(frozen=True)
class DemoLogs:
    """The files written, and the re-triggers in them as Fourgent would have recorded them when it ran them.

    A store reads a line's lineage only when it recorded that re-trigger, so whoever loads the demo records
    these (`Store.record_retriggers`) before reading the files.
    """

    files: list[Path]
    retriggers: list[Retrigger]


def write_demo(logs_dir: Path, runs: int, *, seed: int = 7, days: float = 30.0, per_file: int = 250_000,
               now: datetime | None = None) -> DemoLogs:
    """Write demo logs as logs_dir/demo-<seed>-NNNN.jsonl (per_file records each); never over a file that is
    there (DemoExists names it): a seed makes the same run IDs, so a second demo of it would only clash."""
    logs_dir.mkdir(parents=True, exist_ok=True)
    there = sorted(logs_dir.glob(f"demo-{seed}-*.jsonl"))
    if there:
        raise DemoExists(f"{there[0]} is there already: demo logs of seed {seed} were written before. "
                         "Nothing was written; choose another --seed (or move that file away).")
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    records = generate(runs, seed=seed, days=days, now=now)
    written: list[Path] = []
    retriggers: list[Retrigger] = []
    while chunk := list(itertools.islice(records, per_file)):
        final = logs_dir / f"demo-{seed}-{len(written) + 1:04d}.jsonl"
        tmp = final.with_name("." + final.name + ".tmp")  # not *.jsonl: ingest never reads it half-written
        with open(tmp, "w", encoding="utf-8", newline="\n") as out:
            out.writelines(dumps(record) + "\n" for record in chunk)
        try:
            os.link(tmp, final)  # unlike a rename, never replaces a file that appeared meanwhile
        finally:
            tmp.unlink()
        written.append(final)
        retriggers += [Retrigger(r["id"], r["retrigger_of"], r["retriggered_by"],
                                 datetime.fromisoformat(r["retriggered_at"]))
                       for r in chunk if "retrigger_of" in r]
    return DemoLogs(written, retriggers)
