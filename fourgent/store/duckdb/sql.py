"""SQL fragments every DuckDB query shares, defined once, and the WHERE clause of a RunFilter."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...filters import RunFilter
from ...overview import DAY_MS
from ...spec import CANCELLED_KIND, ENDED_STATUSES, MISSING_FIELD_PATTERN, STATUSES

__all__ = ["DAY_MS"]

# The runs as the Runs page reads them: the `runs` view plus the internal `search` column.
RUN_ROWS = "fg.run_rows"
# A failure rate counts only runs that have ended.
ENDED_SQL = "(" + ", ".join(f"'{s}'" for s in ENDED_STATUSES) + ")"
# Whole UTC days by integer division: 3x faster than date_trunc on TIMESTAMPTZ at 10M rows.
DAY_SQL = f"epoch_ms(started_at) // {DAY_MS}"


def duration_sql(row: str = "") -> str:
    """Milliseconds from started_at to finished_at (of `row.`, e.g. a step): date_diff was 5x slower."""
    return f"epoch_ms({row}finished_at) - epoch_ms({row}started_at)"


DURATION_SQL = duration_sql()
# A workflow's display name, over grouped rows (building it per row took 130 ms at 10M runs).
WORKFLOW_NAME_SQL = "any_value(source) || ' → ' || any_value(destination)"
# The app a failed run failed at: its failed step's app, else the workflow's destination app (kept at ingest
# as fg.runs.failed_app, so the Overview never reads the wide steps column: 0.8 s at 10M runs).
def failed_app_sql(status: str, steps: str, error_step: str, destination_app: str) -> str:
    """The failed app of a row's columns, or of a parsed log line's fields at ingest."""
    return (f"CASE WHEN {status} = 'failed' THEN coalesce(list_extract({steps}, {error_step} + 1).app, "
            f"{destination_app}) END")


FAILED_APP_SQL = failed_app_sql("status", "steps", "error_step", "destination_app")
# An error message with the parts that vary from run to run taken out, so alike failures group:
# quoted values become …, and any word holding a digit (IDs, amounts, status codes, durations) becomes #.
ERROR_PATTERN_SQL = (
    "regexp_replace(regexp_replace(error_message, '''[^'']*''|\"[^\"]*\"', '…', 'g'), "
    "'[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*', '#', 'g')"
)
# Originals whose latest re-trigger finished (resolved). An unresolved failure is a failed run that was
# not itself a re-trigger and is not among them: a predicate on the row against this small set (a
# semi-join of every run against the failed ones took 400 ms at 10M runs).
def resolved_sql(source: str, since: str = "", among: str = "") -> str:
    """The resolved originals among the rows of `source`, reading only children started on or after `since`
    (a parameter) when given: a child starts after its original; and only children of the ids `among`
    selects when given (a few hundred failures of an edge hour, not every re-trigger since: 38 ms → 2 at 10M)."""
    started = f" AND started_at >= {since}" if since else ""
    of = f" AND retrigger_of IN ({among})" if among else ""
    return (f"SELECT retrigger_of FROM {source} WHERE retrigger_of IS NOT NULL{started}{of} "
            "GROUP BY retrigger_of HAVING arg_max(status, started_at) = 'finished'")


RESOLVED_SQL = resolved_sql(RUN_ROWS)
# Failures that need nothing more from anyone without a replay: marked handled (a small table), or cancelled on
# purpose. Neither is unresolved; a filter that asks for kind `cancelled` sees cancelled runs as unresolved again,
# so they can be re-triggered deliberately.
HANDLED_SQL = "SELECT run_id FROM fg.handled"
NOT_SETTLED_SQL = f"id NOT IN ({HANDLED_SQL}) AND coalesce(error_kind, '') <> '{CANCELLED_KIND}'"


def unresolved_where(with_cancelled: bool = False) -> str:
    """A predicate on a row of fg.runs / fg.run_rows: an unresolved failure (with cancelled ones, when asked)."""
    settled = f"id NOT IN ({HANDLED_SQL})" if with_cancelled else NOT_SETTLED_SQL
    return f"status = 'failed' AND retrigger_of IS NULL AND {settled} AND id NOT IN ({RESOLVED_SQL})"


UNRESOLVED_WHERE = unresolved_where()
# Failed originals that need nothing more: resolved by a finished re-trigger, handled, or cancelled (the
# Overview's "resolved or handled since", the complement of still failing).
SETTLED_WHERE = (f"status = 'failed' AND retrigger_of IS NULL AND (id IN ({HANDLED_SQL}) "
                 f"OR coalesce(error_kind, '') = '{CANCELLED_KIND}' OR id IN ({RESOLVED_SQL}))")
UNRESOLVED_SQL = f"SELECT id FROM fg.runs WHERE {UNRESOLVED_WHERE}"


def run_where(f: RunFilter) -> tuple[str, list[Any]]:
    """A WHERE clause (or "") over `fg.run_rows` and its parameters; user text only ever travels as a parameter."""
    parts: list[str] = []
    params: list[Any] = []
    q = f.q.strip()
    if q:
        # `search` is lower(reference || chr(31) || id), kept at ingest: one column to scan, no wildcards.
        parts.append("contains(search, lower(?))")
        params.append(q)
    statuses = [s for s in f.statuses if s in STATUSES]
    if statuses:
        parts.append("status IN (SELECT unnest(?::VARCHAR[]))" if len(statuses) > 1 else "status = ?")
        params.append(statuses if len(statuses) > 1 else statuses[0])
    if f.workflows:
        wf = list(f.workflows)
        parts.append("workflow_id IN (SELECT unnest(?::VARCHAR[]))" if len(wf) > 1 else "workflow_id = ?")
        params.append(wf if len(wf) > 1 else wf[0])
    if f.start is not None:
        parts.append("started_at >= ?")
        params.append(f.start)
    if f.end is not None:
        parts.append("started_at < ?")
        params.append(f.end)
    if f.unresolved:
        parts.append(f"({unresolved_where(with_cancelled=CANCELLED_KIND in f.kinds)})")
    if f.error:
        # The pattern is worked out once per distinct message, not once per failed run.
        parts.append(f"status = 'failed' AND error_message IN (SELECT error_message FROM (SELECT DISTINCT "
                     f"error_message FROM fg.runs WHERE status = 'failed') WHERE {ERROR_PATTERN_SQL} = ?)")
        params.append(f.error)
    if f.originals:
        parts.append("retrigger_of IS NULL")
    if f.resolved:
        parts.append(f"({SETTLED_WHERE})")
    for column, values in (("error_kind", f.kinds), ("failed_app", f.apps)):
        if values:
            parts.append(f"status = 'failed' AND {column} IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(values))
    return (" WHERE " + " AND ".join(parts) if parts else ""), params


# Failures a replay cannot fix, which a bulk re-trigger leaves out unless asked: an auth failure at an app whose
# connection is still broken (the apps are a parameter), and a validation failure whose payload lacks the field
# its error names (a replay sends the same payload). Each a predicate on the row, false when it cannot say.
_FIELD = "regexp_extract(error_message, ?, 1)"
WAITING_SQL = "coalesce(error_kind = 'auth' AND failed_app IN (SELECT unnest(?::VARCHAR[])), false)"
# CASE, not AND: a JSON path is only built for a row whose error names a field ('$.""' is an error).
UNFIXABLE_SQL = (f"CASE WHEN error_kind = 'validation' AND {_FIELD} <> '' THEN "
                 f"coalesce(json_extract_string(trigger_payload, '$.\"' || {_FIELD} || '\"'), '') = '' "
                 "ELSE false END")
UNFIXABLE_PARAMS = [MISSING_FIELD_PATTERN, MISSING_FIELD_PATTERN]  # one per {_FIELD}


def leave_out_where(waiting_apps: Sequence[str], unfixable: bool) -> tuple[str, list[Any]]:
    """AND-conditions (or "") leaving those failures out of a selection, and their parameters."""
    parts: list[str] = []
    params: list[Any] = []
    if waiting_apps:
        parts.append(f"NOT {WAITING_SQL}")
        params.append(list(waiting_apps))
    if unfixable:
        parts.append(f"NOT {UNFIXABLE_SQL}")
        params += UNFIXABLE_PARAMS
    return "".join(f" AND {p}" for p in parts), params
