"""Durations' quantiles from a histogram of 1%-wide buckets, as the per-day rollups keep them."""

from __future__ import annotations

import math

BUCKETS_PER_E = 100  # histogram buckets per factor of e: each about 1% wide


def bucket_value(bucket: int) -> float:
    """A duration (ms) standing for a histogram bucket: the geometric middle of its range."""
    return 0.0 if bucket <= 0 else math.exp((bucket - 0.5) / BUCKETS_PER_E)


def quantile(hist: list[tuple[int, int]], q: float) -> float | None:
    """quantile_cont's answer, estimated from (bucket, runs) pairs."""
    hist = sorted(hist)
    total = sum(n for _, n in hist)
    if not total:
        return None
    pos = (total - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    values: list[float] = []
    seen = 0
    for bucket, n in hist:
        while len(values) < 2 and (lo if not values else hi) < seen + n:
            values.append(bucket_value(bucket))
        seen += n
        if len(values) == 2:
            break
    return values[0] + (values[1] - values[0]) * (pos - lo)
