"""The embedded store's tables as Arrow, for `migrate` to copy into another engine (the reading SQL is this
engine's; the other engine's package says how it writes them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from .database import Cursor

# Each table `migrate` copies, with the columns and types the other engine's tables take: JSON as text, the
# steps as the JSON array the log line had, rejected lines with their file's path (the views' names), and per
# file the rejected lines counted past the cap but not kept. Not `search`: the other engine lowers it itself.
DUMP_SQL: dict[str, str] = {
    "runs": ("SELECT id, reference, workflow_id, source, destination, source_app, destination_app, status, "
             "started_at, finished_at, updated_at, error_message, error_kind, error_step, skip_reason, "
             "retrigger_of, retrigger_claim, attempt, trigger_payload::VARCHAR AS trigger_payload, "
             "result::VARCHAR AS result, coalesce(to_json(steps)::VARCHAR, '[]') AS steps, extra::VARCHAR AS extra, "
             "failed_app, seq::UBIGINT AS seq, f.path AS source_file, line::UBIGINT AS source_line "
             "FROM fg.runs LEFT JOIN fg.files f USING (file_id)"),
    "files": ("SELECT file_id::UBIGINT AS file_id, path, size, mtime_ns, \"offset\", lines, head_len, head_digest, "
              "dev, ino, tail_digest, gone, rejects_not_kept, read_at FROM fg.files"),
    "rejects": ("SELECT r.file_id::UBIGINT AS file_id, f.path AS file, r.line::UBIGINT AS line, r.reason, r.raw, "
                "r.ingested_at FROM fg.rejects r JOIN fg.files f USING (file_id)"),
    "comments": "SELECT run_id, author, body, created_at FROM main.comments",
    "handled": "SELECT run_id, handled_by, handled_at, reason FROM main.handled",
    "retriggers": ("SELECT run_id, retrigger_of, retriggered_by, retriggered_at, mode, from_step, "
                   "payload_diff::VARCHAR AS payload_diff, owner FROM fg.retriggers"),
    "paused": "SELECT workflow_id, paused_at, paused_by FROM fg.paused",
    "retrigger_claims": "SELECT run_id, claimed_at, coalesce(owner, '') AS owner FROM fg.retrigger_claims",
    # The credentials as they are stored, encrypted: the key file is not in the store and is not copied.
    "connections": ("SELECT app, base_url, token_encrypted, token_hint, updated_at, last_success_at, refused_at "
                    "FROM fg.connections"),
    "audit": ("SELECT entry::UBIGINT AS entry, acted_at, actor, role, via, action, target, detail::VARCHAR AS detail, "
              "outcome, message FROM fg.audit"),
    "alert_rules": ("SELECT rule_id::UBIGINT AS rule_id, name, kind, workflow_id, subject, threshold, min_runs, "
                    "window_minutes, cooldown_minutes, destination, enabled, updated_at, updated_by "
                    "FROM fg.alert_rules"),
    "alert_destinations": "SELECT name, url_encrypted, masked, updated_at FROM fg.alert_destinations",
    "alert_episodes": ("SELECT episode::UBIGINT AS episode, rule_id::UBIGINT AS rule_id, rule_name, kind, fired_at, "
                       "resolved_at, summary, runs, query, fired_by, checked_at FROM fg.alert_episodes"),
    "alert_deliveries": ("SELECT delivery::UBIGINT AS delivery, episode::UBIGINT AS episode, event, destination, "
                         "queued_at, outcome, attempts, sent_at, reason FROM fg.alert_deliveries"),
}


def dump(cursor: Callable[[], Cursor], batch_rows: int = 200_000) -> Iterator[tuple[str, pa.RecordBatchReader]]:
    """(table, its rows as Arrow batches) for each table of DUMP_SQL, each read on a cursor of its own (one
    cursor holds one open result)."""
    for table, sql in DUMP_SQL.items():
        yield table, cursor().sql(sql).to_arrow_reader(batch_rows)


def counts(cur: Cursor) -> dict[str, int]:
    """Rows per table of DUMP_SQL, to check a copy against."""
    return {table: int(cur.execute(f"SELECT count(*) FROM ({sql})").fetchall()[0][0])
            for table, sql in DUMP_SQL.items()}
