"""Every contract test runs against each store engine: add an engine here and the same tests run on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from copies import clickhouse_copy, embedded_copy_source
from fourgent.store import AlertBook, Store
from fourgent.store.clickhouse import ClickHouseStore
from fourgent.store.duckdb import DuckDBStore

ENGINES: dict[str, Callable[[Path], Store]] = {
    "duckdb": lambda folder: DuckDBStore(folder / "store.duckdb"),
    "clickhouse": lambda folder: ClickHouseStore(f"chdb://{folder / 'clickhouse'}"),  # type: ignore[dict-item]
}


@pytest.fixture(params=sorted(ENGINES))
def engine_store(request, tmp_path) -> Iterator[Store]:
    """A fresh, empty store of each engine."""
    store = ENGINES[request.param](tmp_path)
    yield store
    store.close()


@pytest.fixture(params=["duckdb", "clickhouse"])
def alert_book(request, tmp_path) -> Iterator[AlertBook]:
    """A fresh, empty store of each engine that has the AlertBook protocol (ClickHouse: chDB in this process)."""
    store: DuckDBStore | ClickHouseStore = (DuckDBStore(tmp_path / "store.duckdb") if request.param == "duckdb"
                                            else ClickHouseStore(f"chdb://{tmp_path / 'clickhouse'}"))
    yield store
    store.close()


def _on_engine(engine: str, embedded: DuckDBStore, folder: Path) -> Iterator[DuckDBStore | ClickHouseStore]:
    """`embedded` itself, or its copy in ClickHouse as `migrate` makes one; closed after the test."""
    if engine == "duckdb":
        yield embedded
    else:
        copy = clickhouse_copy(embedded, folder)
        yield copy
        copy.close()
    embedded.close()


@pytest.fixture(params=["duckdb", "clickhouse"])
def reader(request, tmp_path, samples) -> Iterator[DuckDBStore | ClickHouseStore]:
    """The stores of copies.embedded_copy_source on each engine."""
    yield from _on_engine(request.param, embedded_copy_source(tmp_path, samples), tmp_path)


@pytest.fixture(params=["duckdb", "clickhouse"])
def ledger_book(request, tmp_path, samples) -> Iterator[DuckDBStore | ClickHouseStore]:
    """The sample logs alone in a store of each engine that has the Ledger's comments, pauses and connections."""
    embedded = DuckDBStore(tmp_path / "store.duckdb")
    embedded.ingest([samples])
    yield from _on_engine(request.param, embedded, tmp_path)


@pytest.fixture
def loaded(engine_store, samples) -> Store:
    """A store of each engine holding the sample logs: 369 lines, 356 runs, 8 rejected lines."""
    engine_store.ingest([samples])
    return engine_store


@pytest.fixture
def both(tmp_path, samples) -> Iterator[tuple[DuckDBStore, ClickHouseStore]]:
    """The embedded store of copies.embedded_copy_source and its copy in ClickHouse."""
    embedded = embedded_copy_source(tmp_path, samples)
    copy = clickhouse_copy(embedded, tmp_path)
    yield embedded, copy
    copy.close()
    embedded.close()
