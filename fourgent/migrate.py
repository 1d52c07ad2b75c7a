"""Copying the embedded store into ClickHouse (`python -m fourgent migrate --to URL`), checked row for row."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .access import Action, Actor
from .audit import perform
from .config import shown
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


class MigrateFailed(Exception):
    """The copy could not be made: the engine's or the driver's reason, with the password taken out."""


def scrubbed(text: str, url: str) -> str:
    """`text` with the URL's password (and the URL itself) replaced: a driver's error may quote either."""
    from .store.clickhouse import parse_url

    text = text.replace(url, shown(url))
    try:
        password = parse_url(url).password
    except ValueError:
        password = url.partition("://")[2].rpartition("@")[0].partition(":")[2] or None
    return text.replace(password, "***") if password else text


def copy(store: Store, url: str) -> MigrateReport:
    """Copy `store`'s runs (their latest snapshots), rejected lines, comments, handled marks and re-trigger
    records into the empty ClickHouse database at `url`; raises CopyIncomplete when the counts differ."""
    from .store.clickhouse import ClickHouseStore
    from .store.duckdb import DuckDBStore

    if not isinstance(store, DuckDBStore):
        raise TypeError("migrate copies an embedded (DuckDB) store")
    started = time.monotonic()
    try:
        target = ClickHouseStore(url)
        try:
            target.load(store.dump())
            report = MigrateReport(shown(url), store.table_counts(), target.counts(), time.monotonic() - started)
        finally:
            target.close()
    except Exception as exc:  # noqa: BLE001 - whatever the driver says, without the password, before it is shown
        raise MigrateFailed(scrubbed(f"{type(exc).__name__}: {exc}", url)[:500]) from None
    if not report.complete:
        raise CopyIncomplete(f"after the copy ClickHouse holds {report.copied}, the embedded store {report.source}")
    return report


def migrate(store: Store, actor: Actor, url: str) -> MigrateReport:
    """`copy` as `actor` (an admin's action), audited with the target (no password) and the counts."""
    return perform(store, actor, Action.MIGRATE, shown(url), lambda: copy(store, url),
                   outcome=lambda r: {"rows": r.copied, "seconds": round(r.seconds, 1)})
