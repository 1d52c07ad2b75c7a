"""Reading run log files as bytes: finding them, following .gz, and cutting new complete lines into Arrow tables.

Python finds line boundaries (numpy over the raw bytes) and hands the store one Arrow table per batch,
zero-copy; the store's engine parses, validates and types every line. Nothing here knows the engine.
"""

from __future__ import annotations

import os
import queue
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NotRequired, Protocol, TypedDict, TypeVar

import numpy as np
import pyarrow as pa

from .spec import MAX_LINE_BYTES, RAW_KEEP_CHARS

# One transaction per batch of about this many bytes of log. Each batch has a fixed cost
# (its commit, settling its snapshots, the row groups it leaves part-filled): 1 GB batches
# ingest a million runs 17% faster than 256 MB ones, for about 3 GB of memory at the peak
# of a bulk load. Appends to live logs make small batches anyway.
BATCH_BYTES = 1 << 30
LOG_SUFFIXES = (".jsonl", ".jsonl.gz")
_BOM = b"\xef\xbb\xbf"
_NEWLINE_SCAN = 1 << 20  # numpy compares this many bytes at a time, to stay in cache
SCAN_ROWS = 4_096  # rows per Arrow record batch handed to DuckDB


class Reject(TypedDict):
    """One of an ingest's first rejected lines: `file_id` as the batch finds it, `file` (its path) once reported."""

    file_id: NotRequired[int]
    file: NotRequired[str]
    line: int
    reason: str


@dataclass
class IngestReport:
    """What one ingest did. lines == snapshots + rejected, always."""

    files: int = 0  # files with new complete lines
    lines: int = 0
    snapshots: int = 0  # lines that passed validation
    added: int = 0  # runs seen for the first time
    updated: int = 0  # runs whose current snapshot was replaced
    superseded: int = 0  # snapshots that arrived but were older than the one kept
    rejected: int = 0
    rejects_not_kept: int = 0  # rejected lines past a file's REJECTS_KEPT_PER_FILE: counted, text not kept
    bytes: int = 0
    seconds: float = 0.0
    snapshot_seconds: float = 0.0  # then, bringing the read-only snapshot of the views up to date
    first_rejects: list[Reject] = field(default_factory=list)
    reread: list[str] = field(default_factory=list)  # names that hold another file now: read from its start
    links_left_out: list[str] = field(default_factory=list)  # links in a folder that point outside it
    cut: list[str] = field(default_factory=list)  # .gz files that inflated past their cap: the rest not read
    followed: list[str] = field(default_factory=list)  # "b.jsonl → b.jsonl.1": read on where rotation put it
    copies: list[str] = field(default_factory=list)  # new files holding what a followed file holds: not read
    # Files and folders that could not be read ("a.jsonl: Permission denied"): skipped, the rest read; tried
    # again on the next ingest, from where they were.
    unreadable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def merge(self, other: IngestReport) -> None:
        for name in ("lines", "snapshots", "added", "updated", "superseded", "rejected", "rejects_not_kept", "bytes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        room = 10 - len(self.first_rejects)
        self.first_rejects.extend(other.first_rejects[:room])


class NotALogFile(ValueError):
    """A path given to ingest that is neither a run log nor a folder of them."""


def is_log_file(path: Path) -> bool:
    return path.name.endswith(LOG_SUFFIXES)


def discover(paths: Iterable[Path], left_out: list[str] | None = None,
             unreadable: list[str] | None = None) -> list[Path]:
    """Run log files under the given files and folders, in the order their snapshots count (sorted by path).

    Inside a folder, a link is followed only while it stays in that folder: `logs/passwd.jsonl -> /etc/passwd`
    would show another file's lines to every visitor as rejected lines. Links left out are added to
    `left_out`. A file named on its own is read as named."""
    return [Path(found) for found, _ in sorted(scan(paths, left_out, unreadable), key=path_order)]


def scan(paths: Iterable[Path], left_out: list[str] | None = None,
         unreadable: list[str] | None = None) -> list[tuple[str, str]]:
    """What `discover` finds, unordered, as (path as found, real path) strings: a plain file under a folder is
    its own real path. Strings, not Paths: building and sorting 20,000 Paths was most of a refresh with
    nothing new; ingest sorts only the files that changed. A sub-folder that cannot be listed is added to
    `unreadable` and the rest is read."""
    found: list[tuple[str, str]] = []
    for path in paths:
        if path.is_dir():
            found.extend(_walk(path, left_out if left_out is not None else [],
                               unreadable if unreadable is not None else []))
        elif path.is_file():
            if not is_log_file(path):
                raise NotALogFile(f"{path} is not a run log (expected .jsonl or .jsonl.gz)")
            found.append((str(path), str(path.resolve())))
        else:
            raise NotALogFile(f"{path} does not exist")
    return found


def path_order(found: tuple[str, *tuple[object, ...]]) -> str:
    """The sort key of a found file (its path as found first)."""
    # Path order compares component by component; with the separator as the lowest character, plain string
    # order is the same ("a/x" before "a-b/x").
    return found[0].replace(os.sep, "\0")


def unreadable_because(path: str, exc: OSError) -> str:
    """How the ingest report names a file or folder it could not read: "logs/a.jsonl: Permission denied"."""
    return f"{path}: {exc.strerror or exc}"


def _walk(folder: Path, left_out: list[str], unreadable: list[str]) -> list[tuple[str, str]]:
    # os.scandir tells links and kinds from the directory itself: only links pay for resolving (a refresh
    # of 20,000 files spent most of its time resolving every path).
    root = folder.resolve()
    files: list[tuple[str, str]] = []
    links: list[tuple[str, str]] = []
    stack = [str(root)]  # paths under the resolved folder: a plain file's path is then its real one
    while stack:
        here = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError as exc:  # the logs folder itself too: what is stored stays on show
            unreadable.append(unreadable_because(here, exc))
            continue
        for entry in entries:
            if entry.is_symlink():
                target = Path(entry.path).resolve()
                if not target.is_relative_to(root):
                    left_out.append(entry.path)
                elif entry.name.endswith(LOG_SUFFIXES) and target.is_file():
                    links.append((entry.path, str(target)))
                # a linked folder inside is not descended into (it would read its files twice)
            elif entry.name.endswith(LOG_SUFFIXES) and entry.is_file(follow_symlinks=False):
                files.append((entry.path, entry.path))
            elif entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
    # A link to a file of the folder is that file: read once, under its own name (its key in the store).
    seen = {real for _, real in files} if links else set()
    for path, real in sorted(links, key=path_order):
        if real not in seen:
            seen.add(real)
            files.append((path, real))
    return files



# --------------------------------------------------------------------------- reading files

class GzipStream:
    """A forward-reading view of a gzip file's decompressed bytes.

    Unlike gzip.GzipFile it returns whatever is decompressible from a file
    still being written, and reads concatenated members (an appended .gz).
    `seek` goes forward by decompressing, or back within the last read.
    """

    def __init__(self, path: Path) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close(), it outlives this call
        self._inflate = zlib.decompressobj(wbits=47)
        self._pending = b""  # decompressed, not yet returned
        self._last = b""  # the last chunk returned, for a short seek back
        self._pos = 0  # decompressed position of the next byte `read` returns
        self._error: zlib.error | None = None

    def _fill(self, want: int) -> None:
        parts = [self._pending]
        have = len(self._pending)
        try:
            while have < want and self._error is None:
                raw = self._file.read(1 << 20)
                if not raw:
                    break
                while raw:
                    out = self._inflate.decompress(raw)
                    parts.append(out)
                    have += len(out)
                    if not self._inflate.eof:
                        break
                    raw = self._inflate.unused_data
                    self._inflate = zlib.decompressobj(wbits=47)
        except zlib.error as exc:
            self._error = exc  # raised once what came before it has been read
        self._pending = b"".join(parts)

    def read(self, n: int) -> bytes:
        self._fill(n)
        if not self._pending and self._error is not None:
            raise self._error
        out, self._pending = self._pending[:n], self._pending[n:]
        self._last = out
        self._pos += len(out)
        return out

    def seek(self, pos: int) -> None:
        if pos < self._pos:
            back = self._pos - pos
            if back > len(self._last):
                raise ValueError("cannot seek that far back in a gzip stream")
            self._pending = self._last[len(self._last) - back :] + self._pending
            self._pos = pos
            self._last = b""
            return
        while self._pos < pos:
            if not self.read(min(pos - self._pos, 8 << 20)):
                break

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self._file.close()


@dataclass
class Long:
    """A line too long to hold in memory: kept as its first bytes and its length."""

    head: bytes
    length: int


class ByteStream(Protocol):
    """What `segments` reads: a binary file, or a GzipStream."""

    def read(self, n: int, /) -> bytes: ...
    def seek(self, pos: int, /) -> object: ...


def segments(stream: ByteStream, start: int, piece: int) -> Iterator[tuple[int, memoryview | Long]]:
    """(offset, complete lines) from `start` on; a last line with no newline is left for later."""
    pos = start
    stream.seek(pos)
    while True:
        data = stream.read(piece)
        if not data:
            return
        cut = data.rfind(b"\n")
        if cut >= 0:
            yield pos, memoryview(data)[: cut + 1]
            pos += cut + 1
            if cut + 1 < len(data):
                stream.seek(pos)
            continue
        if len(data) < piece:
            return  # the last line is still being written
        # No newline in a whole piece: one long line. Read on to its end, keeping it
        # only while it is within the limit.
        chunks, length = [data], len(data)
        while length <= MAX_LINE_BYTES:
            more = stream.read(piece)
            if not more:
                return
            k = more.find(b"\n")
            if k >= 0:
                line = b"".join(chunks) + more[: k + 1]
                yield pos, memoryview(line)
                pos += len(line)
                stream.seek(pos)
                break
            chunks.append(more)
            length += len(more)
        else:
            head = b"".join(chunks)[: RAW_KEEP_CHARS * 4]
            chunks = []
            while True:
                more = stream.read(piece)
                if not more:
                    return
                k = more.find(b"\n")
                if k < 0:
                    length += len(more)
                    continue
                length += k
                yield pos, Long(head, length)
                pos += length + 1
                stream.seek(pos)
                break


def _newlines(arr: np.ndarray) -> np.ndarray:
    mask = np.empty(min(len(arr), _NEWLINE_SCAN), dtype=bool)
    parts = []
    for start in range(0, len(arr), _NEWLINE_SCAN):
        chunk = arr[start : start + _NEWLINE_SCAN]
        np.equal(chunk, 10, out=mask[: len(chunk)])
        parts.append(np.flatnonzero(mask[: len(chunk)]) + start)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _too_long(length: int) -> str:
    return f"line is {length:,} bytes, over the {MAX_LINE_BYTES:,}-byte limit"


def lines_table(file_id: int, first_line: int, data: memoryview, at_file_start: bool) -> pa.Table:
    """One Arrow row per line: zero-copy over `data` unless a line needs a reason decided here."""
    arr = np.frombuffer(data, dtype=np.uint8)
    ends = _newlines(arr)
    n = len(ends)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[0] = 0
    offsets[1:] = ends + 1
    if at_file_start and bytes(data[:3]) == _BOM:
        offsets[0] = 3
    lengths = ends - offsets[:-1]
    # Each value keeps its "\n" (and any "\r"): JSON reads them as trailing white space.
    text = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    try:
        text.validate(full=True)
        clean = bool((lengths <= MAX_LINE_BYTES).all())
    except pa.ArrowInvalid:
        clean = False
    if clean:
        reasons = pa.nulls(n, pa.string())
    else:
        raw_lines: list[str] = []
        why: list[str | None] = []
        for i in range(n):
            line = bytes(data[offsets[i] : ends[i]])
            if len(line) > MAX_LINE_BYTES:
                raw_lines.append(line[: RAW_KEEP_CHARS * 4].decode("utf-8", "backslashreplace"))
                why.append(_too_long(len(line)))
                continue
            try:
                raw_lines.append(line.decode("utf-8"))
                why.append(None)
            except UnicodeDecodeError as exc:
                raw_lines.append(line.decode("utf-8", "backslashreplace"))
                why.append(f"not valid UTF-8: byte 0x{line[exc.start]:02x} at byte {exc.start + 1} of the line")
        text = pa.array(raw_lines, pa.large_string())
        reasons = pa.array(why, pa.string())
    return pa.table(
        {
            "file_id": pa.array(np.full(n, file_id, dtype=np.int64)),
            "line": pa.array(np.arange(first_line, first_line + n, dtype=np.int64)),
            "raw": text,
            "pre_reason": reasons,
        }
    )


def long_table(file_id: int, line: int, item: Long) -> pa.Table:
    return pa.table(
        {
            "file_id": pa.array([file_id], pa.int64()),
            "line": pa.array([line], pa.int64()),
            "raw": pa.array([item.head.decode("utf-8", "backslashreplace")], pa.large_string()),
            "pre_reason": pa.array([_too_long(item.length)], pa.string()),
        }
    )


T = TypeVar("T")


def prefetch(items: Iterator[T]) -> Iterator[T]:
    """Run `items` one step ahead in a thread; its exceptions surface here."""
    handoff: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    done = object()

    def hand(item: object) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def produce() -> None:
        try:
            for item in items:
                if not hand(item):
                    return
            hand(done)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            hand(exc)

    worker = threading.Thread(target=produce, name="fourgent-ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = handoff.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()

