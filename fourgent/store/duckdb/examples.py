"""Example queries for the Explore page: questions people ask when the filters run out (each returns rows on
the demo data; a test runs every one)."""

from __future__ import annotations

EXAMPLES: dict[str, str] = {
    "Failure rate by workflow per day": """SELECT to_timestamp(epoch_ms(started_at) // 86400000 * 86400) AS day, workflow,
       count(*) AS runs,
       round(100.0 * count(*) FILTER (WHERE status = 'failed') / count(*), 1) AS failed_pct
FROM runs
WHERE started_at >= now() - INTERVAL 14 DAY
GROUP BY ALL
ORDER BY day DESC, failed_pct DESC""",
    "Runs stuck in running for over an hour": """SELECT id, reference, workflow, started_at,
       date_diff('minute', started_at, now()) AS minutes_running
FROM runs
WHERE status = 'running' AND started_at < now() - INTERVAL 1 HOUR
ORDER BY started_at""",
    "Records that failed twice or more this week": """SELECT coalesce(trigger_payload ->> 'record_id', reference) AS record, workflow,
       count(*) AS failures, max(started_at) AS last_failure
FROM runs
WHERE status = 'failed' AND started_at >= now() - INTERVAL 7 DAY
GROUP BY ALL
HAVING count(*) >= 2
ORDER BY failures DESC, last_failure DESC""",
    "Slowest steps (p50 and p95)": """SELECT name, app, count(*) AS runs,
       median(duration_ms) AS p50_ms, quantile_cont(duration_ms, 0.95) AS p95_ms
FROM steps
WHERE duration_ms IS NOT NULL
GROUP BY ALL
ORDER BY p95_ms DESC
LIMIT 15""",
    "Errors by kind per app": """SELECT failed_app AS app, error_kind, count(*) AS failures, max(started_at) AS last_seen
FROM runs
WHERE status = 'failed'
GROUP BY ALL
ORDER BY failures DESC""",
    "Unresolved failures (not resolved by a re-trigger, handled or cancelled)": """WITH latest AS (
    SELECT retrigger_of, arg_max(status, started_at) AS latest_status
    FROM runs WHERE retrigger_of IS NOT NULL GROUP BY retrigger_of
)
SELECT r.id, r.reference, r.workflow, r.started_at, r.error_kind, r.error_message,
       l.latest_status AS latest_retrigger
FROM runs r LEFT JOIN latest l ON l.retrigger_of = r.id
WHERE r.status = 'failed' AND r.retrigger_of IS NULL
  AND coalesce(l.latest_status, '') <> 'finished'
  AND coalesce(r.error_kind, '') <> 'cancelled'
  AND r.id NOT IN (SELECT run_id FROM handled)
ORDER BY r.started_at DESC""",
    "Runs per hour, last 48 hours": """SELECT to_timestamp(epoch_ms(started_at) // 3600000 * 3600) AS hour, status, count(*) AS runs
FROM runs
WHERE started_at >= now() - INTERVAL 48 HOUR
GROUP BY ALL
ORDER BY hour""",
}

