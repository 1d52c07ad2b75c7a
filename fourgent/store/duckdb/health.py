"""The Workflows page's health figures: per workflow, runs (originals) in the last day and week, a daily sparkline."""

from __future__ import annotations

from datetime import datetime

import polars as pl

from ...overview import QUARTER_MS, UTC_ZONE, HealthSpan, health
from .database import Cursor
from .sql import ENDED_SQL, RUN_ROWS


def workflow_health(cur: Cursor, now: datetime | None = None, zone: str = UTC_ZONE) -> pl.DataFrame:
    """Per workflow with runs: fourgent.overview.health's table. Runs are originals, as the Overview counts them:
    a re-trigger is not a new run (last_run counts any)."""
    span = HealthSpan.at(now, zone)
    # Per quarter hour, mapped to the zone's days by `health`: at most workflows × SPARK_DAYS × 96 rows.
    recent = cur.execute(
        f"SELECT workflow_id, epoch_ms(started_at) // {QUARTER_MS} AS q, count(*), "
        "count(*) FILTER (started_at >= ?), count(*) FILTER (started_at >= ?), "
        "count(*) FILTER (started_at >= ? AND status = 'failed'), "
        f"count(*) FILTER (started_at >= ? AND status IN {ENDED_SQL}) "
        f"FROM {RUN_ROWS} WHERE started_at >= ? AND started_at < ? AND retrigger_of IS NULL GROUP BY ALL",
        [span.day_ago, span.week_ago, span.week_ago, span.week_ago, span.since, span.now],
    ).fetchall()
    everyone = cur.execute(
        f"SELECT workflow_id, any_value(source), any_value(destination), max(started_at) FROM {RUN_ROWS} "
        "GROUP BY workflow_id ORDER BY 2, 3, 1").fetchall()
    return health(span, recent, everyone)
