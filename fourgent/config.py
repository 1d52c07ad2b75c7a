"""Where the data lives: FOURGENT_DATA_DIR (default ./data) holds logs/ and fourgent.duckdb."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = Path(__file__).resolve().parent.parent / "data"


@dataclass(frozen=True)
class Paths:
    data_dir: Path

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
    return Paths(Path(chosen).expanduser().resolve())


SQL_TIME_LIMIT_S = 10.0  # an ad-hoc query's default time limit
SQL_MAX_ROWS = 10_000  # rows of an ad-hoc query's result kept; the rest are counted


def sql_time_limit() -> float:
    """Seconds an ad-hoc query may run: $FOURGENT_SQL_TIMEOUT, else 10."""
    try:
        return max(0.1, float(os.environ.get("FOURGENT_SQL_TIMEOUT", str(SQL_TIME_LIMIT_S))))
    except ValueError:
        return SQL_TIME_LIMIT_S
