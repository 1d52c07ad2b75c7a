"""Reading what people keep beside the runs in ClickHouse: comments, pauses, connections, the audit, alert state."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import polars as pl

from ...spec import INTERRUPTED_KIND
from ..records import (
    AlertDelivery,
    AlertDestinationRow,
    AlertEpisode,
    AlertRule,
    AuditEntry,
    Comment,
    ConnectionRow,
    Handled,
    RecordedRun,
    RunRecord,
)
from .schema import epoch_ms
from .sql import RUNS, Params, instant

RULE_COLUMNS = ("name, kind, threshold, workflow_id, subject, min_runs, window_minutes, cooldown_minutes, "
                "destination, enabled, rule_id, updated_at, updated_by")
# The embedded store's `alerts` view: an episode with where it was sent and how each of its messages went.
# A run as the `runs` view has it (explore.py makes the view of it), with the file and line it was read from.
DETAIL_SQL = f"""
SELECT id, reference, toString(workflow_id) AS workflow_id, source || ' → ' || destination AS workflow,
       toString(source) AS source, toString(destination) AS destination, toNullable(toString(source_app)) AS source_app,
       toNullable(toString(destination_app)) AS destination_app, toString(status) AS status, started_at, finished_at,
       {epoch_ms('finished_at')} - {epoch_ms('started_at')} AS duration_ms, error_message,
       toNullable(toString(error_kind)) AS error_kind, error_step, skip_reason, retrigger_of, retrigger_claim, attempt,
       toInt64(length(JSONExtractArrayRaw(steps))) AS step_count, trigger_payload, result, updated_at, extra,
       toNullable(toString(failed_app)) AS failed_app, source_file, source_line
FROM {RUNS}"""
# A run's steps from the JSON array its line had, as the `steps` view has them (explore.py makes the view of it).
STEP_COLUMNS = """toInt64(i - 1) AS step_index, JSONExtract(s, 'name', 'Nullable(String)') AS name,
       JSONExtract(s, 'app', 'Nullable(String)') AS app, JSONExtract(s, 'status', 'Nullable(String)') AS status,
       JSONExtract(s, 'attempts', 'Nullable(Int64)') AS attempts,
       parseDateTime64BestEffortOrNull(JSONExtractString(s, 'started_at'), 6, 'UTC') AS started_at,
       parseDateTime64BestEffortOrNull(JSONExtractString(s, 'finished_at'), 6, 'UTC') AS finished_at,
       dateDiff('millisecond', started_at, finished_at) AS duration_ms,
       JSONExtract(s, 'error', 'Nullable(String)') AS error,
       nullIf(nullIf(JSONExtractRaw(s, 'input'), ''), 'null') AS input,
       nullIf(nullIf(JSONExtractRaw(s, 'output'), ''), 'null') AS output"""
STEPS_FROM = "ARRAY JOIN JSONExtractArrayRaw(steps) AS s, arrayEnumerate(JSONExtractArrayRaw(steps)) AS i"
EPISODES_SQL = """
SELECT e.episode, e.rule_id, e.rule_name, e.kind, e.fired_at, e.resolved_at, e.summary, e.runs, e.query, e.fired_by,
       e.checked_at, d.destination, d.fired_delivery, d.resolved_delivery
FROM (SELECT * FROM alert_episodes FINAL) e
LEFT JOIN (SELECT episode, any(destination) AS destination, anyIf(outcome, event = 'fired') AS fired_delivery,
                  anyIf(outcome, event = 'resolved') AS resolved_delivery
           FROM alert_deliveries FINAL GROUP BY episode) d ON d.episode = e.episode
"""


class Rows(Protocol):
    def _rows(self, sql: str, p: Params | None = None) -> list[tuple[Any, ...]]: ...
    def _frame(self, sql: str, p: Params | None = None) -> pl.DataFrame: ...


def _episodes(store: Rows, where: str, p: Params | None = None) -> list[AlertEpisode]:
    rows = store._rows(f"SELECT * FROM ({EPISODES_SQL}) {where}", p)
    # A LEFT JOIN fills a missing right side with the type's default: an episode sent nowhere has '' for each.
    return [AlertEpisode(*[*r[:11], *(v or None for v in r[11:])]) for r in rows]


class LedgerReads:
    """The Ledger and AlertBook reads the contract tests compare with the embedded store's (writes come later)."""

    def comments(self: Rows, run_id: str) -> list[Comment]:
        """Newest first."""
        p = Params()
        return [Comment(*r) for r in self._rows(
            f"SELECT run_id, author, body, created_at FROM comments WHERE run_id = {p.add(run_id, 'String')} "
            "ORDER BY created_at DESC", p)]

    def paused(self: Rows) -> dict[str, tuple[datetime, str]]:
        return {wf: (at, by) for wf, at, by in self._rows("SELECT workflow_id, paused_at, paused_by FROM paused FINAL")}

    def claimed(self: Rows) -> dict[str, str | None]:
        """The runs claimed for a re-trigger, and by which process."""
        return dict(self._rows("SELECT run_id, nullIf(argMin(owner, (claimed_at, owner)), '') "
                               "FROM retrigger_claims FINAL GROUP BY run_id"))

    def audit_entries(self: Rows, *, actor: str = "", action: str = "", outcome: str = "",
                      since: datetime | None = None, limit: int = 1000) -> list[AuditEntry]:
        """Newest first, under the filters given (empty: any)."""
        p = Params()
        where = ["1"]
        if actor:
            where.append(f"positionCaseInsensitiveUTF8(actor, {p.add(actor, 'String')}) > 0")
        if action:
            where.append(f"action = {p.add(action, 'String')}")
        if outcome:
            where.append(f"outcome = {p.add(outcome, 'String')}")
        if since is not None:
            where.append(f"acted_at >= {instant(since, p)}")
        rows = self._rows("SELECT acted_at, actor, role, via, action, target, detail, outcome, message FROM audit "
                          f"WHERE {' AND '.join(where)} ORDER BY entry DESC LIMIT {p.add(limit, 'UInt64')}", p)
        return [AuditEntry(at=r[0], actor=r[1], role=r[2], via=r[3], action=r[4], target=r[5],
                           detail=json.loads(r[6]) if r[6] else None, outcome=r[7], message=r[8]) for r in rows]

    def connection(self: Rows, app: str) -> tuple[str, str | None] | None:
        """(base URL, encrypted credential) of one app."""
        p = Params()
        rows = self._rows(f"SELECT base_url, token_encrypted FROM connections FINAL WHERE app = {p.add(app, 'String')}",
                          p)
        return (rows[0][0], rows[0][1]) if rows else None

    def connection_rows(self: Rows) -> list[ConnectionRow]:
        """Every stored connection, ordered by app; `refused` when its latest answer was a refusal."""
        return [ConnectionRow(*[*r[:6], bool(r[6])]) for r in self._rows(
            "SELECT app, base_url, token_encrypted, token_hint, updated_at, last_success_at, "
            "ifNull(refused_at >= updated_at AND refused_at >= ifNull(last_success_at, refused_at), 0) "
            "FROM connections FINAL ORDER BY app")]

    def alert_rules(self: Rows) -> list[AlertRule]:
        return [AlertRule(*r) for r in self._rows(f"SELECT {RULE_COLUMNS} FROM alert_rules FINAL ORDER BY rule_id")]

    def alert_destinations(self: Rows) -> list[AlertDestinationRow]:
        return [AlertDestinationRow(*r) for r in self._rows(
            "SELECT name, url_encrypted, masked, updated_at FROM alert_destinations FINAL ORDER BY name")]

    def alert_destination(self: Rows, name: str) -> str | None:
        p = Params()
        rows = self._rows(f"SELECT url_encrypted FROM alert_destinations FINAL WHERE name = {p.add(name, 'String')}", p)
        return rows[0][0] if rows else None

    def open_alert_episodes(self: Rows) -> dict[int, AlertEpisode]:
        """Per rule id, its open episode."""
        return {e.rule_id: e for e in _episodes(self, "WHERE resolved_at IS NULL")}

    def alert_history(self: Rows, limit: int = 500) -> list[AlertEpisode]:
        """Newest first."""
        p = Params()
        return _episodes(self, f"ORDER BY fired_at DESC, episode DESC LIMIT {p.add(limit, 'UInt64')}", p)

    def pending_alerts(self: Rows) -> list[AlertDelivery]:
        """Messages queued and not yet delivered or given up on, oldest first."""
        rows = self._rows("SELECT delivery, event, destination, episode FROM alert_deliveries FINAL "
                          "WHERE outcome = 'pending' ORDER BY delivery")
        if not rows:
            return []
        p = Params()
        among = p.among([int(r[3]) for r in rows], "UInt64")
        episodes = {e.episode: e for e in _episodes(self, f"WHERE episode IN {among}", p)}
        return [AlertDelivery(int(r[0]), r[1], r[2], episodes[int(r[3])]) for r in rows]

    # -- re-triggers: what they replay, and what the ledger recorded of them

    def originals(self: Rows, run_ids: Sequence[str]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
        """Per run: its workflow id, reference and trigger payload."""
        p = Params()
        return {r[0]: (r[1], r[2], json.loads(r[3]) if r[3] else {}) for r in self._rows(
            f"SELECT id, toString(workflow_id), reference, trigger_payload FROM {RUNS} "
            f"WHERE id IN {p.among(list(run_ids), 'String')}", p)}

    def parents(self: Rows, run_ids: Sequence[str]) -> dict[str, str]:
        """The run each of these re-triggered, for those that are re-triggers of a run in the store."""
        p = Params()
        return dict(self._rows(
            f"SELECT id, assumeNotNull(retrigger_of) FROM {RUNS} WHERE id IN {p.among(list(run_ids), 'String')} "
            f"AND retrigger_of IN (SELECT id FROM runs)", p))

    def retriggered_since(self: Rows, run_ids: Sequence[str], since: datetime) -> dict[str, str]:
        """Per run re-triggered since `since`: its newest re-trigger's id (its run need not be read yet)."""
        p = Params()
        return dict(self._rows(
            "SELECT retrigger_of, argMax(run_id, retriggered_at) FROM retriggers FINAL "
            f"WHERE retrigger_of IN {p.among(list(run_ids), 'String')} AND retriggered_at >= {instant(since, p)} "
            "GROUP BY retrigger_of", p))

    def interrupted_sends(self: Rows, originals: Sequence[str]) -> dict[str, tuple[str, list[int]]]:
        """Per original whose latest re-trigger was interrupted: that run, and the steps it may have sent (those
        recorded as called, and the one under way: recovery.py)."""
        if not originals:
            return {}
        p = Params()
        among = p.among(list(originals), "String")
        rows = self._rows(
            f"SELECT retrigger_of, id, steps, error_step FROM {RUNS} WHERE id IN ("
            f"SELECT argMax(id, started_at) FROM {RUNS} WHERE retrigger_of IN {among} "
            f"GROUP BY retrigger_of) AND error_kind = '{INTERRUPTED_KIND}'", p)
        sent: dict[str, tuple[str, list[int]]] = {}
        for original, run_id, steps, error_step in rows:
            called = {i for i, step in enumerate(json.loads(steps or "[]")) if (step.get("attempts") or 0) >= 1}
            sent[original] = (run_id, sorted(called | ({error_step} if error_step is not None else set())))
        return sent

    def orphaned_retriggers(self: Rows, mine: str) -> list[tuple[str, str, str | None]]:
        """Replays of other processes not ended: (run id, owner, status or None when no line was read)."""
        p = Params()
        return [(r[0], r[1], r[2] or None) for r in self._rows(
            "SELECT t.run_id, assumeNotNull(t.owner), toString(r.status) FROM (SELECT * FROM retriggers FINAL) t "
            f"LEFT JOIN (SELECT id, status FROM {RUNS}) r ON r.id = t.run_id "
            f"WHERE t.owner IS NOT NULL AND t.owner <> {p.add(mine, 'String')} "
            "AND (r.id = '' OR r.status IN ('running', 'pending'))", p)]

    def recorded_runs(self: Rows, run_ids: Sequence[str]) -> dict[str, RecordedRun]:
        """Each run's status, failed step and recorded steps: what a re-run from a step reuses (one query; the
        steps are the JSON array the log line had)."""
        p = Params()
        keep = ("name", "app", "status", "attempts", "input", "output")
        return {r[0]: RecordedRun(r[1], r[2], [{k: step.get(k) for k in keep} for step in json.loads(r[3] or "[]")])
                for r in self._rows(f"SELECT id, toString(status), error_step, steps FROM {RUNS} "
                                    f"WHERE id IN {p.among(list(run_ids), 'String')}", p)}

    def handled(self: Rows, run_ids: Sequence[str]) -> dict[str, Handled]:
        p = Params()
        return {r[0]: Handled(*r) for r in self._rows(
            "SELECT run_id, handled_by, handled_at, reason FROM handled FINAL "
            f"WHERE run_id IN {p.among(list(run_ids), 'String')}", p)}

    # -- one run in full, for its page

    def run_record(self: Rows, run_id: str) -> RunRecord | None:
        p = Params()
        one = p.add(run_id, "String")
        found = self._frame(f"SELECT * FROM ({DETAIL_SQL}) WHERE id = {one}", p).to_dicts()
        if not found:
            return None
        run = found[0]
        source_file, source_line = run.pop("source_file"), run.pop("source_line")
        del run["failed_app"]  # not among the page's fields
        steps = self._frame(f"SELECT {STEP_COLUMNS} FROM {RUNS} {STEPS_FROM} WHERE id = {one} ORDER BY step_index",
                            p).to_dicts()
        parent = None
        if run["retrigger_of"]:
            rows = self._rows(
                "SELECT t.retriggered_by, t.retriggered_at, t.mode, t.from_step, t.payload_diff, p.status, "
                f"p.started_at, p.id <> '' FROM (SELECT * FROM retriggers FINAL WHERE run_id = {one}) t LEFT JOIN "
                f"(SELECT id, toString(status) AS status, started_at FROM {RUNS}) p ON p.id = t.retrigger_of", p)
            by, at, mode, from_step, diff, status, started, known = rows[0] if rows else (None,) * 7 + (False,)
            parent = {"id": run["retrigger_of"], "status": status if known else None,
                      "started_at": started if known else None, "by": by, "at": at, "mode": mode or "replay",
                      "from_step": from_step, "payload_diff": json.loads(diff) if diff else None}
        # The lineage people see is the one Fourgent recorded: who asked, from the ledger, not from a line.
        children = [dict(zip(("id", "status", "started_at", "by", "mode", "from_step"), r, strict=True))
                    for r in self._rows(
                        "SELECT c.id, toString(c.status), c.started_at, t.retriggered_by, t.mode, t.from_step "
                        f"FROM (SELECT * FROM {RUNS} WHERE retrigger_of = {one}) c "
                        "JOIN (SELECT * FROM retriggers FINAL) t ON t.run_id = c.id ORDER BY c.started_at", p)]
        return RunRecord(run, steps, parent, children, source_file, None if source_line is None else int(source_line))

