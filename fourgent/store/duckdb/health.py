"""The Workflows page's health figures: per workflow, runs (originals) in the last day and week, a daily sparkline."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from polars.datatypes import DataTypeClass

from ...overview import QUARTER_MS, SPARK_DAYS, UTC_ZONE
from .database import Cursor
from .sql import ENDED_SQL, RUN_ROWS


def workflow_health(cur: Cursor, now: datetime | None = None, zone: str = UTC_ZONE) -> pl.DataFrame:
    """Per workflow with runs: workflow_id, source, destination, last_run, runs_24h, runs_7d, failed_7d,
    failure_rate_7d, daily (runs per day of `zone` over the last SPARK_DAYS days, today last). Runs are
    originals, as the Overview counts them: a re-trigger is not a new run (last_run counts any)."""
    now = now or datetime.now(UTC)
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    first_day = today - timedelta(days=SPARK_DAYS - 1)
    since = datetime.combine(first_day, time.min, tz)
    week_ago = now - timedelta(days=7)
    # Per quarter hour (the slot every zone's days are made of), mapped to the zone's days here: at most
    # workflows × SPARK_DAYS × 96 rows.
    recent = cur.execute(
        f"SELECT workflow_id, epoch_ms(started_at) // {QUARTER_MS} AS q, count(*), "
        "count(*) FILTER (started_at >= ?), count(*) FILTER (started_at >= ?), "
        "count(*) FILTER (started_at >= ? AND status = 'failed'), "
        f"count(*) FILTER (started_at >= ? AND status IN {ENDED_SQL}) "
        f"FROM {RUN_ROWS} WHERE started_at >= ? AND started_at < ? AND retrigger_of IS NULL GROUP BY ALL",
        [now - timedelta(days=1), week_ago, week_ago, week_ago, since, now],
    ).fetchall()
    acc: dict[str, list[Any]] = {}
    for wf, slot, runs, r24, r7, f7, e7 in recent:
        a = acc.setdefault(wf, [[0] * SPARK_DAYS, 0, 0, 0, 0])
        day = datetime.fromtimestamp(slot * QUARTER_MS / 1000, UTC).astimezone(tz).date()
        a[0][(day - first_day).days] += runs
        a[1] += r24
        a[2] += r7
        a[3] += f7
        a[4] += e7
    everyone = cur.execute(
        f"SELECT workflow_id, any_value(source), any_value(destination), max(started_at) FROM {RUN_ROWS} "
        "GROUP BY workflow_id ORDER BY 2, 3, 1").fetchall()
    rows = []
    for wf, source, destination, last_run in everyone:
        daily, r24, r7, f7, e7 = acc.get(wf, [[0] * SPARK_DAYS, 0, 0, 0, 0])
        rows.append({"workflow_id": wf, "source": source, "destination": destination, "last_run": last_run,
                     "runs_24h": r24, "runs_7d": r7, "failed_7d": f7,
                     "failure_rate_7d": f7 / e7 if e7 else None, "daily": daily})
    schema: dict[str, pl.DataType | DataTypeClass] = {
        "workflow_id": pl.String, "source": pl.String, "destination": pl.String,
        "last_run": pl.Datetime("us", "UTC"), "runs_24h": pl.Int64, "runs_7d": pl.Int64, "failed_7d": pl.Int64,
        "failure_rate_7d": pl.Float64, "daily": pl.List(pl.Int64)}
    return pl.DataFrame(rows, schema=schema)
