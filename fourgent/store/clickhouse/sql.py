"""SQL fragments the ClickHouse reads share, defined once, and the WHERE clause of a RunFilter.

Parameters are ClickHouse's own, bound by the server (`{p0:String}`): user text never enters the SQL text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ...filters import RunFilter
from ...spec import CANCELLED_KIND, ENDED_STATUSES, STATUSES
from .schema import epoch_ms

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def live_runs(database: str | None = None) -> str:
    """The latest snapshot of each run: FINAL keeps each sorting key's row of the highest `seq` as it reads (per
    partition: a run's snapshots share its month), and the rows left under a run's old keys are `deleted` ones.
    They are left out by this WHERE, not by the engine's is_deleted: with is_deleted FINAL cannot read a merged
    partition as it stands, and the first page took 88 ms at 2M runs against 9 ms (schema.RUNS_DDL)."""
    table = f"`{database}`.runs" if database else "runs"
    return f"(SELECT *, search FROM {table} FINAL WHERE deleted = 0)"


RUNS = live_runs()
# A failure rate counts only runs that have ended; a run's duration in the embedded store's rounded milliseconds.
ENDED_SQL = "(" + ", ".join(f"'{s}'" for s in ENDED_STATUSES) + ")"
DURATION_SQL = f"{epoch_ms('finished_at')} - {epoch_ms('started_at')}"
# An error message with the parts that vary from run to run taken out, so alike failures group (the same rule as
# the embedded store's ERROR_PATTERN_SQL; a contract test compares the two).
ERROR_PATTERN_SQL = (
    "replaceRegexpAll(replaceRegexpAll(error_message, '''[^'']*''|\"[^\"]*\"', '…'), "
    "'[A-Za-z0-9_.-]*[0-9][A-Za-z0-9_.-]*', '#')"
)
RESOLVED_SQL = (f"SELECT retrigger_of FROM {RUNS} WHERE retrigger_of IS NOT NULL "
                "GROUP BY retrigger_of HAVING argMax(status, started_at) = 'finished'")
HANDLED_SQL = "SELECT run_id FROM handled FINAL"


def unresolved_where(with_cancelled: bool = False) -> str:
    settled = (f"id NOT IN ({HANDLED_SQL})" if with_cancelled else
               f"id NOT IN ({HANDLED_SQL}) AND coalesce(error_kind, '') <> '{CANCELLED_KIND}'")
    return f"status = 'failed' AND retrigger_of IS NULL AND {settled} AND id NOT IN ({RESOLVED_SQL})"


SETTLED_WHERE = (f"status = 'failed' AND retrigger_of IS NULL AND (id IN ({HANDLED_SQL}) "
                 f"OR coalesce(error_kind, '') = '{CANCELLED_KIND}' OR id IN ({RESOLVED_SQL}))")


SET_LITERAL_MAX = 5_000


@dataclass
class Params:
    """Named server-side parameters, numbered as they are added."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{kind}}}"

    def among(self, values: Sequence[Any], kind: str) -> str:
        """The right side of `x IN …` for these values of ClickHouse type `kind`. Past SET_LITERAL_MAX values, a
        subquery over the array: ClickHouse analyses a long IN literal slowly (55,000 run IDs: 42 s, as a subquery
        0.3 s), and a short one lets the ID bloom filter skip granules."""
        array = self.add(list(values), f"Array({kind})")
        return array if len(values) <= SET_LITERAL_MAX else f"(SELECT arrayJoin({array}))"


def fold(expr: str) -> str:
    """Text folded for a case-blind search, as schema.RUNS_DDL folds `search`: lower case by ClickHouse's rule,
    and a word-final sigma (ς) as σ, which is what upper case Σ lowers to wherever it stands."""
    return f"replaceAll(lowerUTF8({expr}), 'ς', 'σ')"


def like_pattern(text: str) -> str:
    """`text` as a LIKE pattern matching it anywhere, its own % _ and \\ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def micros(t: datetime) -> int:
    """Whole microseconds since 1970 of an aware datetime."""
    return (t - EPOCH) // timedelta(microseconds=1)


def instant(t: datetime, p: Params) -> str:
    """An aware datetime as a bound parameter, exact to the microsecond."""
    return f"fromUnixTimestamp64Micro({p.add(micros(t), 'Int64')}, 'UTC')"


def run_where(f: RunFilter, p: Params) -> str:
    """A WHERE clause (or "") over the latest snapshots, its values added to `p`."""
    parts: list[str] = []
    q = f.q.strip()
    if q:
        # `search` is lower(reference || chr(31) || id): LIKE is what the n-gram bloom filter can skip granules for.
        parts.append(f"search LIKE {fold(p.add(like_pattern(q), 'String'))}")
    statuses = [s for s in f.statuses if s in STATUSES]
    if statuses:
        parts.append(f"status IN {p.among(statuses, 'String')}")
    if f.workflows:
        parts.append(f"workflow_id IN {p.among(list(f.workflows), 'String')}")
    if f.start is not None:
        parts.append(f"started_at >= {instant(f.start, p)}")
    if f.end is not None:
        parts.append(f"started_at < {instant(f.end, p)}")
    if f.unresolved:
        parts.append(f"({unresolved_where(with_cancelled=CANCELLED_KIND in f.kinds)})")
    if f.error:
        parts.append(f"status = 'failed' AND error_message IN (SELECT DISTINCT error_message FROM {RUNS} "
                     f"WHERE status = 'failed' AND {ERROR_PATTERN_SQL} = {p.add(f.error, 'String')})")
    if f.originals:
        parts.append("retrigger_of IS NULL")
    if f.resolved:
        parts.append(f"({SETTLED_WHERE})")
    for column, values in (("error_kind", f.kinds), ("failed_app", f.apps)):
        if values:
            parts.append(f"status = 'failed' AND {column} IN {p.among(list(values), 'String')}")
    return (" WHERE " + " AND ".join(parts)) if parts else ""
