"""IDs the ClickHouse store makes for new rows (rules, episodes, messages, audit entries, rollup generations)."""

from __future__ import annotations

import secrets
import time


def fresh_id() -> int:
    """An ID no other process makes: microseconds since 1970 with 10 random bits below, so IDs still sort by
    when they were made (after those a copy brought, which are small)."""
    return (time.time_ns() // 1000) << 10 | secrets.randbits(10)
