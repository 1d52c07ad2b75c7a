"""Copying the embedded store into ClickHouse (`python -m fourgent migrate --to URL`), checked row for row."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlparse, urlunparse

from .access import Action, Actor
from .audit import perform
from .store import Store


@dataclass(frozen=True)
class MigrateReport:
    """What a copy moved: rows per table, in the embedded store and in ClickHouse after the copy."""

    target: str  # the URL without its password
    source: dict[str, int]
    copied: dict[str, int]
    seconds: float

    @property
    def complete(self) -> bool:
        return self.source == self.copied


class CopyIncomplete(Exception):
    """ClickHouse holds other counts than the embedded store after a copy."""


def shown(url: str) -> str:
    """A store URL fit to print and audit: its password replaced by ***."""
    parsed = urlparse(url)
    if not parsed.password:
        return url
    netloc = f"{parsed.username}:***@{parsed.hostname}" + (f":{parsed.port}" if parsed.port else "")
    return urlunparse(parsed._replace(netloc=netloc))


def copy(store: Store, url: str) -> MigrateReport:
    """Copy `store`'s runs (their latest snapshots), rejected lines, comments, handled marks and re-trigger
    records into the empty ClickHouse database at `url`; raises CopyIncomplete when the counts differ."""
    from .store.clickhouse import ClickHouseStore
    from .store.duckdb import DuckDBStore

    if not isinstance(store, DuckDBStore):
        raise TypeError("migrate copies an embedded (DuckDB) store")
    started = time.monotonic()
    target = ClickHouseStore(url)
    try:
        target.load(store.dump())
        report = MigrateReport(shown(url), store.table_counts(), target.counts(), time.monotonic() - started)
    finally:
        target.close()
    if not report.complete:
        raise CopyIncomplete(f"after the copy ClickHouse holds {report.copied}, the embedded store {report.source}")
    return report


def migrate(store: Store, actor: Actor, url: str) -> MigrateReport:
    """`copy` as `actor` (an admin's action), audited with the target (no password) and the counts."""
    return perform(store, actor, Action.MIGRATE, shown(url), lambda: copy(store, url),
                   outcome=lambda r: {"rows": r.copied, "seconds": round(r.seconds, 1)})
