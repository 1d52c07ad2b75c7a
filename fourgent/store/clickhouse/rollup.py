"""Per-hour rollups of the runs in ClickHouse, so the Overview reads thousands of rows for whole days, not millions.

Not materialized views over `runs`: a view fed by inserts sees every snapshot of a run (running, then finished:
counted twice), and whether a failure is still unresolved changes when a later row arrives (its re-trigger) or a
mark is made (handled). So, as in the embedded store, whole UTC days are recomputed from the latest snapshots:
a change marks its days (`dirty_days`), and `refresh` writes each marked day's hours again as a new
generation. Reads take each day's latest generation only, so a refresh never needs an UPDATE or a DELETE and a
reader never sees half of one; a day is current when its latest generation is newer than its latest mark.

Counts are exact; durations are a histogram in buckets 1% wide (fourgent.quantiles), the same buckets as the
embedded store's, so both engines estimate the same median and p95.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ...overview import DAY_MS, HOUR_MS, Histograms, Window
from ...quantiles import BUCKETS_PER_E
from ...spec import CANCELLED_KIND
from .ids import fresh_id
from .schema import epoch_ms, floor_div
from .sql import DURATION_SQL, ENDED_SQL, ERROR_PATTERN_SQL, HANDLED_SQL, RUNS, Params, instant

DAY = f"toInt32({floor_div(epoch_ms('started_at'), DAY_MS)})"
HOUR = floor_div(epoch_ms("started_at"), HOUR_MS)
BUCKET = f"toInt16(if({DURATION_SQL} <= 0, 0, 1 + floor(log({DURATION_SQL}) * {BUCKETS_PER_E})))"
ENDED_ORIGINALS = f"status IN {ENDED_SQL} AND finished_at IS NOT NULL AND retrigger_of IS NULL"

HOUR_RUNS_DDL = """
CREATE TABLE IF NOT EXISTS hour_runs (
    day           Int32,
    generation    UInt64,
    hour          Int64,
    workflow_id   String,
    source        String,
    destination   String,
    status        String,
    error_kind    Nullable(String),
    failed_app    Nullable(String),
    retrigger     Bool,
    runs          Int64,
    unresolved    Int64,
    first_started DateTime64(6, 'UTC'),
    last_started  DateTime64(6, 'UTC')
) ENGINE = MergeTree ORDER BY (day, generation, hour)
"""
HOUR_DURATIONS_DDL = """
CREATE TABLE IF NOT EXISTS hour_durations (
    day         Int32,
    generation  UInt64,
    hour        Int64,
    workflow_id String,
    bucket      Int16,
    runs        Int64
) ENGINE = MergeTree ORDER BY (day, generation, hour)
"""
# Failed originals per hour, workflow and message pattern, with the most frequent message as its example.
HOUR_ERRORS_DDL = """
CREATE TABLE IF NOT EXISTS hour_errors (
    day         Int32,
    generation  UInt64,
    hour        Int64,
    workflow_id String,
    workflow    String,
    pattern     String,
    failures    Int64,
    first_seen  DateTime64(6, 'UTC'),
    last_seen   DateTime64(6, 'UTC'),
    example     String,
    example_n   Int64
) ENGINE = MergeTree ORDER BY (day, generation, hour)
"""
# hour_durations summed per UTC day: a 90-day window reads 24 times fewer rows (2.4M hour rows at 10M runs).
DAY_DURATIONS_DDL = """
CREATE TABLE IF NOT EXISTS day_durations (
    day         Int32,
    generation  UInt64,
    workflow_id String,
    bucket      Int16,
    runs        Int64
) ENGINE = MergeTree ORDER BY (day, generation)
"""
ROLLUP_DAYS_DDL = """
CREATE TABLE IF NOT EXISTS rollup_days (day Int32, generation UInt64) ENGINE = MergeTree ORDER BY day
"""
DIRTY_DAYS_DDL = """
CREATE TABLE IF NOT EXISTS dirty_days (day Int32, marked UInt64) ENGINE = MergeTree ORDER BY day
"""
TABLES = {"hour_runs": HOUR_RUNS_DDL, "hour_durations": HOUR_DURATIONS_DDL, "hour_errors": HOUR_ERRORS_DDL,
          "day_durations": DAY_DURATIONS_DDL, "rollup_days": ROLLUP_DAYS_DDL,
          "dirty_days": DIRTY_DAYS_DDL}
# The days whose latest mark is newer than their latest generation.
STALE_SQL = """
SELECT d.day FROM (SELECT day, max(marked) AS marked FROM dirty_days GROUP BY day) d
LEFT JOIN (SELECT day, max(generation) AS generation FROM rollup_days GROUP BY day) r ON r.day = d.day
WHERE r.generation < d.marked
"""
LATEST = "(day, generation) IN (SELECT day, max(generation) FROM rollup_days GROUP BY day)"


class Store(Protocol):
    client: Any

    def _rows(self, sql: str, p: Params | None = None,
              settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


def facts_sql(where: str, slot: str, since: str) -> str:
    """Runs of the latest snapshots matching `where`, per slot and the dimensions the Overview groups by; unresolved
    as of now, reading re-triggers started since `since` (no later than the first of these runs: a re-trigger
    starts after its run)."""
    # The re-triggers of these failures only, found in the ledger (small) and read by ID: scanning every re-trigger
    # since `since` cost 150 ms per edge hour of a 90-day Overview at 10M runs, however few runs the edge held.
    failed = f"SELECT id FROM {RUNS} WHERE {where} AND status = 'failed' AND retrigger_of IS NULL"
    resolved = (f"SELECT retrigger_of FROM {RUNS} WHERE id IN (SELECT run_id FROM retriggers FINAL WHERE retrigger_of "
                f"IN ({failed})) AND started_at >= {since} "
                "GROUP BY retrigger_of HAVING argMax(status, started_at) = 'finished'")
    unresolved = (f"status = 'failed' AND retrigger_of IS NULL AND id NOT IN ({HANDLED_SQL}) "
                  f"AND ifNull(error_kind, '') <> '{CANCELLED_KIND}' AND id NOT IN ({resolved})")
    return f"""
        SELECT {slot} AS slot, toString(workflow_id) AS workflow_id, any(source) AS source,
               any(destination) AS destination, toString(status) AS status,
               if(status = 'failed', error_kind, NULL) AS kind, failed_app AS app,
               toBool(retrigger_of IS NOT NULL) AS retrigger, toInt64(count()) AS runs,
               toInt64(countIf({unresolved})) AS unresolved, min(started_at) AS first_started,
               max(started_at) AS last_started
        FROM {RUNS} WHERE {where}
        GROUP BY slot, workflow_id, status, kind, app, retrigger"""


def errors_sql(where: str) -> str:
    """Failed originals matching `where` per hour, workflow and message pattern (ERROR_PATTERN_SQL), grouped by
    message first so each distinct message's pattern is worked out once: hour, workflow_id, workflow, pattern,
    failures, first_seen, last_seen, example (the hour's most frequent message) and its count."""
    return f"""
        SELECT hour, workflow_id, any(workflow) AS workflow, {ERROR_PATTERN_SQL} AS pattern,
               toInt64(sum(n)) AS failures, min(first) AS first_seen, max(last) AS last_seen,
               argMax(error_message, n) AS example, toInt64(max(n)) AS example_n
        FROM (SELECT {HOUR} AS hour, toString(workflow_id) AS workflow_id,
                     assumeNotNull(error_message) AS error_message,
                     any(source) || ' → ' || any(destination) AS workflow, count() AS n, min(started_at) AS first,
                     max(started_at) AS last
              FROM {RUNS} WHERE {where} AND status = 'failed' AND retrigger_of IS NULL AND error_message IS NOT NULL
              GROUP BY hour, workflow_id, error_message)
        GROUP BY hour, workflow_id, pattern"""


def top_errors_sql(rows: str, limit: str) -> str:
    """The Overview's top errors from errors_sql's rows: pattern, failures, first_seen, last_seen, workflows,
    workflow_ids, example."""
    return (f"SELECT pattern, toInt64(sum(failures)) AS failures, min(first_seen) AS first_seen, "
            "max(last_seen) AS last_seen, arraySort(groupUniqArray(workflow)) AS workflows, "
            "arraySort(groupUniqArray(workflow_id)) AS workflow_ids, argMax(example, example_n) AS example "
            f"FROM ({rows}) GROUP BY pattern ORDER BY failures DESC, pattern LIMIT {limit}")


def window_errors_sql(w: Window, p: Params) -> str:
    """errors_sql's rows of the window: whole hours from the rollups, the edges from the runs."""
    parts = window_parts(w, p)
    edges = " ".join(f"UNION ALL {errors_sql(where)}" for where, _ in parts.edges)
    return (f"SELECT hour, workflow_id, workflow, pattern, failures, first_seen, last_seen, example, example_n "
            f"FROM hour_errors WHERE {parts.hours} {edges}")


def hist_sql(where: str) -> str:
    """Ended originals matching `where`, per hour, workflow and duration bucket."""
    return (f"SELECT {HOUR} AS hour, toString(workflow_id) AS workflow_id, "
            f"{BUCKET} AS bucket, toInt64(count()) AS runs FROM {RUNS} WHERE {where} AND {ENDED_ORIGINALS} "
            "GROUP BY hour, workflow_id, bucket")


# ---------------------------------------------------------------- keeping them current

def mark_all(store: Store) -> None:
    """Every day that holds runs is to be recomputed (after a copy)."""
    store.client.command(f"INSERT INTO dirty_days SELECT DISTINCT {DAY}, {fresh_id()} FROM {RUNS}")


def day_numbers(started_at: pa.ChunkedArray | pa.Array) -> list[int]:
    """The distinct days (DAY) of these instants, as the SQL cuts them: milliseconds rounded half away from zero."""
    us = np.asarray(pc.cast(started_at, pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    ms = np.where(us >= 0, (us + 500) // 1000, -((500 - us) // 1000))
    return sorted({int(d) for d in np.unique(ms // DAY_MS)})


def mark_days(store: Store, days: list[int]) -> None:
    """These days are to be recomputed (an ingest wrote runs, or the rows under an old key, in them)."""
    if days:
        p = Params()
        store.client.command(f"INSERT INTO dirty_days SELECT arrayJoin({p.add(days, 'Array(Int32)')}), "
                             f"{p.add(fresh_id(), 'UInt64')}", parameters=p.values)


def mark_runs(store: Store, run_ids: list[str]) -> None:
    """The days of these runs are to be recomputed (what they count as changed)."""
    p = Params()
    store.client.command(f"INSERT INTO dirty_days SELECT DISTINCT {DAY}, {p.add(fresh_id(), 'UInt64')} FROM {RUNS} "
                         f"WHERE id IN {p.among(run_ids, 'String')}", parameters=p.values)


def whole_hours_count(store: Store, w: Window) -> int:
    """Runs in the window's whole hours, from the rollups: what decides whether the Overview reads them."""
    p = Params()
    return int(store._rows(f"SELECT sum(runs) FROM hour_runs WHERE {window_parts(w, p).hours}", p)[0][0] or 0)


def is_current(store: Store) -> bool:
    return not store._rows(f"SELECT count() FROM ({STALE_SQL})")[0][0]


def refresh(store: Store) -> int:
    """Write the hours of every stale day again, as one new generation; returns how many days."""
    days = sorted(d for (d,) in store._rows(STALE_SQL))
    if not days:
        return 0
    generation = fresh_id()  # before reading the runs: a change marked while this reads stays stale
    p = Params()
    among = p.among(days, "Int32")
    since = datetime.fromtimestamp(days[0] * DAY_MS / 1000, UTC)
    where = (f"started_at >= {instant(since, p)} AND started_at < "
             f"{instant(datetime.fromtimestamp((days[-1] + 1) * DAY_MS / 1000, UTC), p)} AND {DAY} IN {among}")
    gen = p.add(generation, "UInt64")
    per_day = DAY_MS // HOUR_MS
    store.client.command(
        f"INSERT INTO hour_runs SELECT toInt32({floor_div('slot', per_day)}), {gen}, slot, workflow_id, source, "
        f"destination, status, kind, app, retrigger, runs, unresolved, first_started, last_started "
        f"FROM ({facts_sql(where, HOUR, instant(since, p))})", parameters=p.values)
    store.client.command(f"INSERT INTO hour_durations SELECT toInt32({floor_div('hour', per_day)}), {gen}, "
                         f"hour, workflow_id, bucket, runs FROM ({hist_sql(where)})", parameters=p.values)
    store.client.command(f"INSERT INTO day_durations SELECT day, generation, workflow_id, bucket, sum(runs) "
                         f"FROM hour_durations WHERE generation = {gen} GROUP BY day, generation, workflow_id, bucket",
                         parameters=p.values)
    store.client.command(f"INSERT INTO hour_errors SELECT toInt32({floor_div('hour', per_day)}), {gen}, * "
                         f"FROM ({errors_sql(where)})", parameters=p.values)
    store.client.command(f"INSERT INTO rollup_days SELECT arrayJoin({p.add(days, 'Array(Int32)')}), {gen}",
                         parameters=p.values)
    # The generations this one replaces are never read again (LATEST): let them go, in the background.
    for table in ("hour_runs", "hour_durations", "day_durations", "hour_errors", "rollup_days"):
        store.client.command(f"DELETE FROM {table} WHERE day IN {among} AND generation < {gen}", parameters=p.values)
    return len(days)


# ---------------------------------------------------------------- reading a window from them

class Parts(NamedTuple):
    """A window as SQL conditions: its whole UTC hours (of the rollups), and each partial hour at its edges (of
    the runs) with the `since` its unresolved count reads re-triggers from."""

    hours: str
    edges: tuple[tuple[str, str], tuple[str, str]]
    days: str  # the whole UTC days among the hours (day_durations' rows) ...
    hours_beside_days: str  # ... and the hours outside them (hour_durations')


def window_parts(w: Window, p: Params) -> Parts:
    first, last, cuts = w.hour_cuts
    only = f" AND workflow_id IN {p.among(list(w.workflows), 'String')}" if w.workflows else ""
    per_day = DAY_MS // HOUR_MS
    hours = (f"hour >= {p.add(first, 'Int64')} AND hour < {p.add(last, 'Int64')} AND day >= "
             f"{p.add(first // per_day, 'Int32')} AND day <= {p.add(last // per_day, 'Int32')} AND {LATEST}{only}")
    s1, e1, s2, e2 = (instant(t, p) for t in cuts)
    d1, d2 = -(-first // per_day), last // per_day
    if d1 >= d2:
        d1 = d2 = first // per_day
    days = f"day >= {p.add(d1, 'Int32')} AND day < {p.add(d2, 'Int32')} AND {LATEST}{only}"
    beside = f"{hours} AND NOT (hour >= {p.add(d1 * per_day, 'Int64')} AND hour < {p.add(d2 * per_day, 'Int64')})"
    return Parts(hours, ((f"started_at >= {s1} AND started_at < {e1}{only}", s1),
                         (f"started_at >= {s2} AND started_at < {e2}{only}", s2)), days, beside)


def window_facts_sql(w: Window, p: Params) -> str:
    """The window's facts per hour slot: whole hours from the rollups, the edges from the runs. For a zone whose
    buckets are whole UTC hours (Window.whole_hours)."""
    parts = window_parts(w, p)
    edges = " ".join(f"UNION ALL {facts_sql(where, HOUR, since)}" for where, since in parts.edges)
    return f"""
        SELECT hour AS slot, workflow_id, source, destination, status, error_kind AS kind, failed_app AS app,
               retrigger, runs, unresolved, first_started, last_started
        FROM hour_runs WHERE {parts.hours} {edges}"""


def window_hist(store: Store, w: Window) -> Histograms:
    """(bucket, runs) of ended originals per workflow, and under None for all of them."""
    p = Params()
    parts = window_parts(w, p)
    edges = " ".join(f"UNION ALL SELECT workflow_id, bucket, runs FROM ({hist_sql(where)})" for where, _ in parts.edges)
    rows = store._rows(f"""
        SELECT workflow_id, bucket, sum(runs) FROM (
            SELECT workflow_id, bucket, runs FROM day_durations WHERE {parts.days}
            UNION ALL SELECT workflow_id, bucket, runs FROM hour_durations WHERE {parts.hours_beside_days} {edges}
        ) GROUP BY workflow_id, bucket""", p)
    hist: Histograms = {None: []}
    totals: dict[int, int] = {}
    for wf, bucket, n in rows:
        hist.setdefault(wf, []).append((int(bucket), int(n)))
        totals[int(bucket)] = totals.get(int(bucket), 0) + int(n)
    hist[None] = list(totals.items())
    return hist
