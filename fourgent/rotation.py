"""Following log files through rotation: which file read before each file on disk now is, by identity and content.

A file read before is known by its identity (device and inode) and its content (the digest of its first bytes,
and of the bytes just before where reading stopped), not by its name, because log rotation changes names:
logrotate renames (`b.jsonl` → `b.jsonl.1` → `b.jsonl.2`), copies and truncates (copytruncate), compresses now
or later (`b.jsonl.1` → `b.jsonl.2.gz`), and names by date (`b.jsonl-20261203`, `b-20261203.jsonl`). A file read
before is followed to wherever its content is now and read there to its end; the name it had then holds a new
file, read from its start. Nothing here knows the store: `plan` maps the files read before onto the files found.
"""

from __future__ import annotations

import hashlib
import os
import stat
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

HEAD_BYTES = 4096  # how much of a file's start identifies it
TAIL_BYTES = 4096  # how much before where reading stopped must still be there, unchanged


@dataclass
class FileRow:
    """A file as reading it left it: where it stopped (`offset`, of the decompressed stream for .gz), its
    identity and digests. `path` is its name in the store (under the logs folder, else its whole real path)."""

    file_id: int
    path: str
    size: int  # bytes on disk when last read to its end, else -1
    mtime_ns: int
    offset: int
    lines: int
    head_len: int
    head_digest: str  # of the first head_len bytes on disk (of a .gz: its compressed bytes)
    dev: int | None = None  # None: read before the store kept identities; matched by name once more
    ino: int | None = None
    tail_digest: str | None = None  # of the TAIL_BYTES on disk before `offset` (plain files only)
    gone: bool = False  # its content is no longer anywhere: kept for its rejected lines, never read again

    @property
    def gz(self) -> bool:
        return self.path.endswith(".gz")

    @property
    def identity(self) -> tuple[int, int] | None:
        return (self.dev, self.ino) if self.dev is not None and self.ino is not None else None


@dataclass(slots=True)  # not frozen: a refresh makes one per file (20,000), and frozen ones cost twice as much
class OnDisk:
    """A file found now: `path` to open it, `key` its name in the store."""

    path: str
    key: str
    st: os.stat_result
    listed: bool  # found by the scan (a log file's name); False: a rotated copy found beside a file read before

    @property
    def identity(self) -> tuple[int, int]:
        return self.st.st_dev, self.st.st_ino

    @property
    def gz(self) -> bool:
        return self.path.endswith(".gz")


@dataclass
class Plan:
    """What to read: files read before, each at where its content is now (`follow`), and new files."""

    follow: list[tuple[FileRow, OnDisk]] = field(default_factory=list)  # read on from row.offset
    new: list[OnDisk] = field(default_factory=list)  # read from the start
    gone: list[FileRow] = field(default_factory=list)  # content nowhere to be found: retired
    moved: list[str] = field(default_factory=list)  # "b.jsonl → b.jsonl.1", for the report
    replaced: list[str] = field(default_factory=list)  # names that now hold another file, read from the start
    copies: list[str] = field(default_factory=list)  # files holding what a file still followed holds: not read


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tail_digest_at(fd: int, offset: int) -> str | None:
    """The digest of the TAIL_BYTES (or fewer, at a file's start) before `offset` of an open plain file; None
    if it is shorter."""
    start = max(0, offset - TAIL_BYTES)
    data = os.pread(fd, offset - start, start)
    return digest(data) if len(data) == offset - start else None


def tail_digest(path: str, offset: int) -> str | None:
    """`tail_digest_at` of the file at `path`; None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return tail_digest_at(f.fileno(), offset)
    except OSError:
        return None


def content_head(path: str, length: int) -> str | None:
    """The digest of a file's first `length` bytes of content: decompressed for a .gz (None when it holds
    fewer, is not gzip or cannot be read)."""
    try:
        with open(path, "rb") as f:
            if not path.endswith(".gz"):
                data = f.read(length)
            else:
                inflate = zlib.decompressobj(wbits=47)
                data = b""
                while len(data) < length:
                    raw = f.read(64 << 10)
                    if not raw:
                        break
                    data += inflate.decompress(raw, length - len(data))
                    while inflate.unconsumed_tail and len(data) < length:
                        data += inflate.decompress(inflate.unconsumed_tail, length - len(data))
                    if inflate.eof:
                        break
    except (OSError, zlib.error):
        return None
    return digest(data) if len(data) == length else None


def intact(row: FileRow, f: OnDisk) -> bool:
    """Whether `f` still holds what `row` read, where row's reading left it (same kind of file)."""
    if row.gz != f.gz:
        return False
    if f.gz:  # a .gz is replaced, not appended to in place: it shrinks or its first bytes change
        if row.size >= 0 and f.st.st_size < row.size:
            return False
        return _safe_head(f.path, row.head_len) == row.head_digest
    if f.st.st_size < row.offset:
        return False  # truncated
    if _safe_head(f.path, row.head_len) != row.head_digest:
        return False
    return row.tail_digest is None or tail_digest(f.path, row.offset) == row.tail_digest


def holds(row: FileRow, f: OnDisk) -> bool:
    """Whether `f` (another file: a copy, a compressed copy) holds what `row` read: its first bytes, and for a
    plain copy the bytes before where reading stopped. Rows of .gz files and of empty files are followed by
    identity only."""
    if row.gz or row.head_len == 0:
        return False
    if not f.gz:
        return intact(row, f)
    return content_head(f.path, row.head_len) == row.head_digest


def _opens(path: str) -> bool:
    try:
        with open(path, "rb"):
            return True
    except OSError:
        return False


def _safe_head(path: str, length: int) -> str | None:
    try:
        with open(path, "rb") as f:
            return digest(f.read(length))
    except OSError:
        return None


def stem(name: str) -> str:
    """What a file's rotated copies' names start with: `b` for b.jsonl, b.jsonl.1, b-20261203.jsonl.gz."""
    return name.split(".jsonl", 1)[0] or name


def escaped(name: str) -> str:
    """A file name as the store keeps it: odd bytes of a name that is not UTF-8 as \\xNN."""
    return name if name.isascii() else name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def rotated_name(name: str, of: str) -> bool:
    """Whether `name` (as the store keeps names) can be a rotated copy of the file named `of`, or `of` itself."""
    return name.startswith(stem(of))


class Folder:
    """The regular files of one folder, listed (and stat'ed) once per plan however many rows look there."""

    def __init__(self, directory: str, key_of: Callable[[str], str], listed: Mapping[str, OnDisk]) -> None:
        self.files: list[OnDisk] | None = []  # None: the folder could not be listed
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError:
            self.files = None
            return
        self.names: list[str] = []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            key = key_of(entry.path)
            self.files.append(listed.get(key) or OnDisk(entry.path, key, st, listed=False))
            self.names.append(escaped(entry.name))

    def beside(self, name: str) -> list[OnDisk]:
        """The files whose names start as `name`'s rotated copies' do (itself included), in name order."""
        if self.files is None:
            return []
        return [f for f, n in zip(self.files, self.names, strict=True) if rotated_name(n, name)]


def unchanged(row: FileRow | None, st: os.stat_result) -> bool:
    """Whether a file found under a row's name is that file, read to its end and untouched since: most of them."""
    return (row is not None and st.st_ino == row.ino and st.st_dev == row.dev and st.st_size == row.size
            and st.st_mtime_ns == row.mtime_ns)


def plan(rows: Mapping[str, FileRow], listed: Iterable[OnDisk], *, in_scope: Callable[[str], bool],
         path_of: Callable[[str], str], key_of: Callable[[str], str], settled: Iterable[str] = ()) -> Plan:
    """Map the files read before (`rows`, by name) onto the files the scan found (`listed`).

    `in_scope(key)`: whether a row's file lies where this scan looked (else it is left as it is); `path_of(key)`
    the path to open a row's file by; `key_of(path)` a path's name in the store; `settled`: names the caller
    found `unchanged`, left out of `listed` (a refresh with nothing new makes no OnDisk at all)."""
    out = Plan()
    by_key = {f.key: f for f in listed}
    # The common case first: every row where it was, untouched or appended to. Only what is left pays for more.
    unsure: list[FileRow] = []
    claimed: set[str] = set(settled)

    def where_it_was(row: FileRow, f: OnDisk) -> bool:
        """Claim `f` for `row` when it is row's file, untouched (nothing to read) or appended to (read on)."""
        if f.identity != row.identity:
            return False
        if not unchanged(row, f.st):
            if not intact(row, f):
                return False
            out.follow.append((row, f))
        claimed.add(row.path)
        return True

    for key in rows.keys() - claimed:
        row = rows[key]
        f = by_key.get(key)
        if f is not None and where_it_was(row, f):
            continue
        if f is None and in_scope(key):  # not a log file's name: a rotated copy followed (b.jsonl.1), or gone
            try:
                st = os.stat(path_of(key))
            except FileNotFoundError:
                st = None
            except OSError:  # its folder cannot be searched now: it may be there, so it is left as it is
                claimed.add(key)
                continue
            if st is not None and stat.S_ISREG(st.st_mode):
                f = OnDisk(path_of(key), key, st, listed=False)
                if where_it_was(row, f):
                    by_key[key] = f
                    continue
            unsure.append(row)
        elif f is not None:
            unsure.append(row)
    if unsure:
        _place(unsure, by_key, claimed, out, path_of, key_of)
    near: dict[str, list[FileRow]] = {}  # rows by folder, built only when a new file turns up
    for key in sorted(by_key.keys() - claimed):
        f = by_key[key]
        if not f.listed:  # a rotated copy's name is never read as a new file
            continue
        if not near:
            for row in rows.values():
                near.setdefault(os.path.dirname(row.path), []).append(row)
            for row, g in out.follow:
                near.setdefault(os.path.dirname(g.key), []).append(row)
        if _copy_of_followed(f, near.get(os.path.dirname(key), []), out):
            out.copies.append(key)
            continue
        out.new.append(f)
        if key in rows:
            out.replaced.append(key)
    return out


def _place(unsure: list[FileRow], by_key: dict[str, OnDisk], claimed: set[str], out: Plan,
           path_of: Callable[[str], str], key_of: Callable[[str], str]) -> None:
    """Rows not found as they were: renamed (same identity elsewhere), a name read before the store kept
    identities, copied or compressed (same content elsewhere), or gone."""
    at: dict[tuple[int, int], OnDisk] = {f.identity: f for f in by_key.values()}
    folders: dict[str, Folder] = {}

    def folder(row: FileRow) -> Folder:
        directory = os.path.dirname(path_of(row.path))
        if directory not in folders:
            folders[directory] = Folder(directory, key_of, by_key)
            for f in folders[directory].files or ():
                at.setdefault(f.identity, f)
        return folders[directory]

    def beside(row: FileRow) -> list[OnDisk]:
        return folder(row).beside(os.path.basename(row.path))

    def take(row: FileRow, f: OnDisk) -> None:
        claimed.add(f.key)
        out.follow.append((row, f))
        if f.key != row.path:
            out.moved.append(f"{row.path} → {f.key}")

    lost: list[FileRow] = []
    for row in unsure:
        identity = row.identity
        if identity is None:  # identity not kept yet: the name decides, as it used to
            f = by_key.get(row.path)
            if f is not None and f.key not in claimed and intact(row, f):
                take(row, f)
                continue
            lost.append(row)
            continue
        f = at.get(identity)
        if f is None:
            beside(row)
            f = at.get(identity)
        if f is not None and f.key not in claimed and (intact(row, f) or not _opens(f.path)):
            take(row, f)  # its own file (one that cannot be opened now is still it: reading says why, and waits)
        else:
            lost.append(row)
    for row in lost:
        if folder(row).files is None:
            continue  # its folder cannot be listed now: it may be there, so it is left as it is
        for f in beside(row):
            if f.key not in claimed and f.identity != row.identity and holds(row, f):
                take(row, f)
                break
        else:
            out.gone.append(row)


def _copy_of_followed(f: OnDisk, beside: Sequence[FileRow], out: Plan) -> bool:
    """Whether a new file holds what a file still followed beside it holds (a compressed copy being written
    before the original is removed, a dated copy b-20261203.jsonl before the truncate): read, it would count
    every line twice. `beside`: the rows of its folder (each by its name now, or where this plan follows it)."""
    gone = {row.file_id for row in out.gone}
    name = os.path.basename(f.key)
    return any(row.file_id not in gone and rotated_name(name, os.path.basename(row.path)) and holds(row, f)
               for row in beside)
