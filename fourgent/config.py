"""Where the data lives: FOURGENT_DATA_DIR (default ./data) holds logs/ and fourgent.duckdb, unless FOURGENT_STORE
names a ClickHouse database to keep the runs in instead."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Paths:
    data_dir: Path
    store: str = ""  # $FOURGENT_STORE: a ClickHouse URL; "" for the embedded DuckDB file (db_path)

    @property
    def store_url(self) -> str:
        """What open_store opens: FOURGENT_STORE, else the embedded file."""
        return self.store or str(self.db_path)

    @property
    def store_shown(self) -> str:
        """The store as messages name it: its URL without the password, or the embedded file's path."""
        return shown(self.store) if self.store else str(self.db_path)

    def has_store(self) -> bool:
        """Whether there is a store to read: a ClickHouse database is asked for (the server says), a file must exist."""
        return bool(self.store) or self.db_path.exists()

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "fourgent.duckdb"

    @property
    def key_file(self) -> Path:
        """The key that encrypts credentials and alert destinations, unless FOURGENT_SECRET_KEY gives it."""
        return self.data_dir / "secret.key"

    def ensure(self) -> Paths:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        return self


def paths(data_dir: str | os.PathLike[str] | None = None) -> Paths:
    """The data folder: the argument, else $FOURGENT_DATA_DIR, else ./data beside the package."""
    chosen = data_dir or os.environ.get("FOURGENT_DATA_DIR") or DEFAULT_DATA_DIR
    return Paths(Path(chosen).expanduser().resolve(), os.environ.get("FOURGENT_STORE", "").strip())


def shown(url: str) -> str:
    """A store URL fit to print and audit: whatever stands between `://` and the last `@` (user and password)
    becomes `user:***`, and the query (`?password=…`) is dropped. By plain string cuts, not a URL parser: a
    password holding an unencoded # ? or / is not a password to a parser, and would be shown."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url.split("?", 1)[0]
    credentials, at, place = rest.rpartition("@")
    if at:
        user = credentials.split(":", 1)[0]
        rest = f"{user}:***@{place}" if ":" in credentials else f"{user}@{place}"
    return f"{scheme}://{rest.split('?', 1)[0]}" + ("?…" if "?" in rest else "")



SQL_TIME_LIMIT_S = 10.0  # an ad-hoc query's default time limit
SQL_MAX_ROWS = 10_000  # rows of an ad-hoc query's result kept; the rest are counted


def sql_time_limit() -> float:
    """Seconds an ad-hoc query may run: $FOURGENT_SQL_TIMEOUT, else 10."""
    try:
        return max(0.1, float(os.environ.get("FOURGENT_SQL_TIMEOUT", str(SQL_TIME_LIMIT_S))))
    except ValueError:
        return SQL_TIME_LIMIT_S
