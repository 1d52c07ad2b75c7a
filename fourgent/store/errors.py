"""What any store engine may raise to its callers, in words a person can act on."""

from __future__ import annotations

from pathlib import Path


class StoreBusy(RuntimeError):
    """Another process holds the store (an embedded engine allows one process per file)."""

    def __init__(self, path: Path, pid: int | None, engine: str = "DuckDB") -> None:
        self.path = path
        self.pid = pid
        holder = f"process {pid}" if pid else "another process"
        super().__init__(
            f"The store {path} is in use by {holder} (usually the running dashboard). "
            f"{engine} lets one process open it at a time."
        )


class QueryRefused(ValueError):
    """An ad-hoc statement the guard does not run; the message says why, in plain words."""


class QueryStopped(RuntimeError):
    """An ad-hoc query ran past its time limit and was interrupted."""


class QueryFailed(RuntimeError):
    """An ad-hoc query ran but its result could not be read back; the message says so in plain words."""


class QueryError(RuntimeError):
    """The engine reported an error for an ad-hoc query; the message is the engine's own words."""


class RunNotFound(LookupError):
    """An action named a run the store does not have."""


class StoreWriteFailed(RuntimeError):
    """The store could not write (disk full, a read-only folder): nothing was lost, what is stored still reads,
    and the same write succeeds once it can. The message says why in words."""
