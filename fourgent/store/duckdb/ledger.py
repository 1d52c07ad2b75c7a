"""What people and the re-triggerer write beside the runs: comments, pauses, re-trigger claims and connections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ... import process
from ...spec import INTERRUPTED_KIND
from ..errors import RunNotFound
from ..records import AuditEntry, Comment, ConnectionRow, Handled, RecordedRun, Retrigger, RunRecord
from . import rollup, snapshot
from .database import Cursor, Database
from .sql import DAY_SQL

DETAIL_COLUMNS = ("id, reference, workflow_id, workflow, source, destination, source_app, destination_app, status, "
                  "started_at, finished_at, duration_ms, error_message, error_kind, error_step, skip_reason, "
                  "retrigger_of, retrigger_claim, attempt, step_count, trigger_payload, result, updated_at, extra")
STEP_COLUMNS = "step_index, name, app, status, attempts, started_at, finished_at, duration_ms, error, input, output"


class Ledger:
    """The DuckDB ledger: every write here is one short transaction under the instance's write lock."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ comments

    def add_comment(self, run_id: str, author: str, body: str) -> Comment:
        with self.db.transaction() as cur:
            if not cur.execute("SELECT count(*) FROM fg.runs WHERE id = ?", [run_id]).fetchall()[0][0]:
                raise RunNotFound("There is no run with that ID.")
            row = cur.execute(
                "INSERT INTO fg.comments VALUES (?, ?, ?, now()) RETURNING run_id, author, body, created_at",
                [run_id, author, body]).fetchall()[0]
            snapshot.write_view(cur, self.db.snapshot_dir, "comments")  # inside the transaction: visible to it
        return Comment(*row)

    def comments(self, run_id: str) -> list[Comment]:
        """Newest first."""
        rows = self.db.cursor().execute(
            "SELECT run_id, author, body, created_at FROM comments WHERE run_id = ? ORDER BY created_at DESC",
            [run_id]).fetchall()
        return [Comment(*r) for r in rows]

    # ------------------------------------------------------------ pauses

    def paused(self) -> dict[str, tuple[datetime, str]]:
        rows = self.db.cursor().execute("SELECT workflow_id, paused_at, paused_by FROM fg.paused").fetchall()
        return {wf: (at, by) for wf, at, by in rows}

    def set_paused(self, workflow_id: str, pause: bool, who: str = "") -> None:
        with self.db.transaction() as cur:
            if pause:
                cur.execute("INSERT INTO fg.paused VALUES (?, now(), ?) ON CONFLICT DO NOTHING", [workflow_id, who])
            else:
                cur.execute("DELETE FROM fg.paused WHERE workflow_id = ?", [workflow_id])

    # ------------------------------------------------------------ re-trigger claims and lineage

    def claim(self, run_ids: Sequence[str]) -> set[str]:
        """Claim runs for re-triggering as this process; a run claimed by a live process (a double click, a second
        tab, a bulk still going) is not returned. A claim of a process that is gone is released first."""
        mine = process.me()
        with self.db.transaction() as cur:
            owners = [o for (o,) in cur.execute(
                "SELECT DISTINCT owner FROM fg.retrigger_claims WHERE owner IS DISTINCT FROM ?", [mine]).fetchall()]
            gone = [o for o in owners if not process.alive(o)]
            if gone:
                cur.execute("DELETE FROM fg.retrigger_claims WHERE owner IS NULL OR owner IN (SELECT unnest(?))",
                            [[o for o in gone if o is not None]])
            rows = cur.execute(
                "INSERT INTO fg.retrigger_claims (run_id, claimed_at, owner) SELECT DISTINCT unnest(?::VARCHAR[]), "
                "now(), ? ON CONFLICT DO NOTHING RETURNING run_id", [list(run_ids), mine]).fetchall()
        return {r[0] for r in rows}

    def release(self, run_ids: Sequence[str]) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM fg.retrigger_claims WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
                        [list(run_ids)])

    def originals(self, run_ids: Sequence[str]) -> dict[str, tuple[str, str | None, dict[str, Any]]]:
        """Per run: its workflow id, reference and trigger payload."""
        rows = self.db.cursor().execute(
            "SELECT id, workflow_id, reference, trigger_payload FROM runs WHERE id IN (SELECT unnest(?::VARCHAR[]))",
            [list(run_ids)]).fetchall()
        return {r[0]: (r[1], r[2], json.loads(r[3]) if r[3] else {}) for r in rows}

    def parents(self, run_ids: Sequence[str]) -> dict[str, str]:
        """The run each of these re-triggered, for those that are re-triggers of a run in the store."""
        return dict(self.db.cursor().execute(
            "SELECT c.id, c.retrigger_of FROM runs c JOIN runs p ON p.id = c.retrigger_of "
            "WHERE c.id IN (SELECT unnest(?::VARCHAR[]))", [list(run_ids)]).fetchall())

    def retriggered_since(self, run_ids: Sequence[str], since: datetime) -> dict[str, str]:
        """Per run re-triggered since `since`: its newest re-trigger's id (its run need not be read yet)."""
        return dict(self.db.cursor().execute(
            "SELECT retrigger_of, arg_max(run_id, retriggered_at) FROM fg.retriggers "
            "WHERE retrigger_of IN (SELECT unnest(?::VARCHAR[])) AND retriggered_at >= ? GROUP BY 1",
            [list(run_ids), since]).fetchall())

    def record_retriggers(self, retriggers: Sequence[Retrigger]) -> None:
        """Before the runs start: the re-triggers about to run, so their lines are read as lineage."""
        if not retriggers:
            return
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO fg.retriggers (run_id, retrigger_of, retriggered_by, retriggered_at, mode, from_step, "
                "payload_diff, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [[r.run_id, r.retrigger_of, r.by, r.at, r.mode, r.from_step,
                  json.dumps(r.payload_diff, ensure_ascii=False) if r.payload_diff is not None else None, r.owner]
                 for r in retriggers])
            cur.execute(f"""INSERT OR IGNORE INTO fg.dirty_days SELECT DISTINCT {DAY_SQL} FROM fg.runs
                            WHERE id IN (SELECT unnest(?::VARCHAR[]))""", [[r.retrigger_of for r in retriggers]])
            snapshot.write_view(cur, self.db.snapshot_dir, "retriggers")

    def orphaned_retriggers(self, mine: str) -> list[tuple[str, str, str | None]]:
        """Replays of other processes not ended: (run id, owner, status or None when no line was read)."""
        return [(r[0], r[1], r[2]) for r in self.db.cursor().execute(
            "SELECT t.run_id, t.owner, r.status FROM fg.retriggers t LEFT JOIN fg.runs r ON r.id = t.run_id "
            "WHERE t.owner IS NOT NULL AND t.owner <> ? AND (r.id IS NULL OR r.status IN ('running', 'pending'))",
            [mine]).fetchall()]

    def interrupted_sends(self, originals: Sequence[str]) -> dict[str, tuple[str, list[int]]]:
        """Per original whose latest re-trigger was interrupted: that run, and the steps it may have sent (those
        recorded as called, and the one under way: recovery.py)."""
        rows = self.db.cursor().execute(
            f"""WITH latest AS (
                    SELECT retrigger_of, arg_max(id, started_at) AS id FROM fg.runs
                    WHERE retrigger_of IN (SELECT unnest(?::VARCHAR[])) GROUP BY 1)
                SELECT l.retrigger_of, l.id,
                       list_distinct(list_filter(range(len(r.steps)),
                                                 lambda i: coalesce(r.steps[i + 1].attempts, 0) >= 1)
                                     || CASE WHEN r.error_step IS NULL THEN [] ELSE [r.error_step] END)
                FROM latest l JOIN fg.runs r ON r.id = l.id
                WHERE r.error_kind = '{INTERRUPTED_KIND}'""", [list(originals)]).fetchall()
        return {r[0]: (r[1], [i for i in (r[2] or []) if i is not None]) for r in rows}

    def forget_retriggers(self, run_ids: Sequence[str]) -> None:
        """Re-triggers recorded but never started (a cancelled bulk's rest)."""
        if not run_ids:
            return
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM fg.retriggers WHERE run_id IN (SELECT unnest(?::VARCHAR[])) "
                        "AND run_id NOT IN (SELECT id FROM fg.runs)", [list(run_ids)])
            snapshot.write_view(cur, self.db.snapshot_dir, "retriggers")

    # ------------------------------------------------------------ handled without a replay

    def mark_handled(self, run_ids: Sequence[str], by: str, reason: str) -> list[str]:
        """Mark these runs handled (only failed ones, not marked already); returns those marked."""
        with self.db.transaction() as cur:
            marked = [r[0] for r in cur.execute(
                "INSERT INTO fg.handled SELECT id, ?, now(), ? FROM fg.runs "
                "WHERE id IN (SELECT unnest(?::VARCHAR[])) AND status = 'failed' AND retrigger_of IS NULL "
                "ON CONFLICT DO NOTHING RETURNING run_id", [by, reason, list(run_ids)]).fetchall()]
            self._handled_changed(cur, marked)
        self._refresh_rollups()
        return marked

    def unmark_handled(self, run_ids: Sequence[str]) -> list[str]:
        with self.db.transaction() as cur:
            unmarked = [r[0] for r in cur.execute(
                "DELETE FROM fg.handled WHERE run_id IN (SELECT unnest(?::VARCHAR[])) RETURNING run_id",
                [list(run_ids)]).fetchall()]
            self._handled_changed(cur, unmarked)
        self._refresh_rollups()
        return unmarked

    def _handled_changed(self, cur: Cursor, run_ids: list[str]) -> None:
        if run_ids:  # the rollups' unresolved counts of their days change
            rollup.mark_runs(cur, run_ids)
        snapshot.write_view(cur, self.db.snapshot_dir, "handled")

    def _refresh_rollups(self) -> None:
        with self.db.write_lock:
            rollup.refresh(self.db.cursor())

    def handled(self, run_ids: Sequence[str]) -> dict[str, Handled]:
        rows = self.db.cursor().execute(
            "SELECT run_id, handled_by, handled_at, reason FROM fg.handled "
            "WHERE run_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(run_ids)]).fetchall()
        return {r[0]: Handled(*r) for r in rows}

    def recorded_runs(self, run_ids: Sequence[str]) -> dict[str, RecordedRun]:
        """Each run's status, failed step and recorded steps: what a re-run from a step reuses (one query)."""
        rows = self.db.cursor().execute(
            "SELECT id, status, error_step, to_json([{'name': s.name, 'app': s.app, 'status': s.status, "
            "'attempts': s.attempts, 'input': s.input, 'output': s.output} FOR s IN steps]) "
            "FROM fg.runs WHERE id IN (SELECT unnest(?::VARCHAR[]))", [list(run_ids)]).fetchall()
        return {r[0]: RecordedRun(r[1], r[2], json.loads(r[3]) if r[3] else []) for r in rows}

    # ------------------------------------------------------------ one run in full

    def run_record(self, run_id: str) -> RunRecord | None:
        cur = self.db.cursor()
        found = cur.execute(f"SELECT {DETAIL_COLUMNS} FROM runs WHERE id = ?", [run_id])
        names = [d[0] for d in found.description]
        rows = found.fetchall()
        if not rows:
            return None
        run = dict(zip(names, rows[0], strict=True))
        steps_cur = cur.execute(f"SELECT {STEP_COLUMNS} FROM steps WHERE run_id = ? ORDER BY step_index", [run_id])
        step_names = [d[0] for d in steps_cur.description]
        steps = [dict(zip(step_names, r, strict=True)) for r in steps_cur.fetchall()]
        parent = None
        if run["retrigger_of"]:
            found_parent = cur.execute(
                "SELECT p.id, p.status, p.started_at, t.retriggered_by, t.retriggered_at, t.mode, t.from_step, "
                "t.payload_diff FROM fg.retriggers t "
                "LEFT JOIN runs p ON p.id = t.retrigger_of WHERE t.run_id = ?", [run_id]).fetchall()
            by, at, mode, from_step, diff = found_parent[0][3:] if found_parent else (None, None, None, None, None)
            parent = {"id": run["retrigger_of"], "status": None, "started_at": None, "by": by, "at": at,
                      "mode": mode or "replay", "from_step": from_step,
                      "payload_diff": json.loads(diff) if diff else None}
            if found_parent and found_parent[0][0] is not None:
                parent.update(status=found_parent[0][1], started_at=found_parent[0][2])
        # The lineage people see is the one Fourgent recorded: who asked, from the ledger, not from a line.
        children = [
            dict(zip(("id", "status", "started_at", "by", "mode", "from_step"), r, strict=True))
            for r in cur.execute("SELECT c.id, c.status, c.started_at, t.retriggered_by, t.mode, t.from_step "
                                 "FROM runs c "
                                 "JOIN fg.retriggers t ON t.run_id = c.id "
                                 "WHERE c.retrigger_of = ? ORDER BY c.started_at", [run_id]).fetchall()
        ]
        where = cur.execute("SELECT f.path, r.line FROM fg.runs r JOIN fg.files f USING (file_id) WHERE r.id = ?",
                            [run_id]).fetchall()
        source_file, source_line = where[0] if where else (None, None)
        return RunRecord(run, steps, parent, children, source_file, source_line)

    # ------------------------------------------------------------ the audit (append-only: no update, no delete)

    def record_audit(self, entry: AuditEntry) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO fg.audit (acted_at, actor, role, via, action, target, detail, outcome, message) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [entry.at, entry.actor, entry.role, entry.via, entry.action, entry.target,
                         json.dumps(entry.detail) if entry.detail is not None else None, entry.outcome,
                         entry.message])
            snapshot.write_view(cur, self.db.snapshot_dir, "audit")

    def audit_entries(self, *, actor: str = "", action: str = "", outcome: str = "", since: datetime | None = None,
                      limit: int = 1000) -> list[AuditEntry]:
        """Newest first, under the filters given (empty: any)."""
        rows = self.db.cursor().execute(
            "SELECT acted_at, actor, role, via, action, target, detail, outcome, message FROM audit "
            "WHERE (? = '' OR contains(lower(actor), lower(?))) AND (? = '' OR action = ?) "
            "AND (? = '' OR outcome = ?) AND (?::TIMESTAMPTZ IS NULL OR acted_at >= ?) "
            "ORDER BY entry DESC LIMIT ?",
            [actor, actor, action, action, outcome, outcome, since, since, limit]).fetchall()
        return [AuditEntry(at=r[0], actor=r[1], role=r[2], via=r[3], action=r[4], target=r[5],
                           detail=json.loads(r[6]) if r[6] else None, outcome=r[7], message=r[8]) for r in rows]

    # ------------------------------------------------------------ connections

    def put_connection(self, app: str, base_url: str, token_encrypted: str | None, token_hint: str | None) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                """INSERT INTO fg.connections (app, base_url, token_encrypted, token_hint, updated_at)
                   VALUES (?, ?, ?, ?, now())
                   ON CONFLICT (app) DO UPDATE SET base_url = excluded.base_url,
                   token_encrypted = excluded.token_encrypted, token_hint = excluded.token_hint,
                   updated_at = excluded.updated_at""",
                [app, base_url, token_encrypted, token_hint])

    def connection(self, app: str) -> tuple[str, str | None] | None:
        """(base URL, encrypted credential) of one app."""
        rows = self.db.cursor().execute(
            "SELECT base_url, token_encrypted FROM fg.connections WHERE app = ?", [app]).fetchall()
        return (rows[0][0], rows[0][1]) if rows else None

    def connection_rows(self) -> list[ConnectionRow]:
        """Every stored connection, ordered by app; `refused` when its latest answer was a refusal."""
        rows = self.db.cursor().execute(
            "SELECT app, base_url, token_encrypted, token_hint, updated_at, last_success_at, "
            "coalesce(refused_at >= updated_at AND refused_at >= coalesce(last_success_at, refused_at), false) "
            "FROM fg.connections ORDER BY app").fetchall()
        return [ConnectionRow(*r) for r in rows]

    def record_calls(self, ok: Sequence[str], refused: Sequence[str]) -> None:
        """Note which apps answered a call (ok) and which refused the credential (401/403)."""
        with self.db.transaction() as cur:
            if ok:
                cur.execute("UPDATE fg.connections SET last_success_at = now() WHERE app IN (SELECT unnest(?))",
                            [list(ok)])
            if refused:
                cur.execute("UPDATE fg.connections SET refused_at = now() WHERE app IN (SELECT unnest(?))",
                            [list(refused)])
