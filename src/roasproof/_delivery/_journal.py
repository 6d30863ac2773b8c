"""The journal: where ``track()`` makes an event durable, with one memory copy.

Committing a row to the SQLite outbox costs B-tree page writes to the WAL,
shared-memory locks and, while other processes write, a wait for the write
lock: two to four times a bare commit, on every checkout, and each of those
system calls hands the GIL to the sender thread. Instead each process
appends its events to its own segment file, mapped into memory
(``MAP_SHARED``): an append is a ``memcpy`` into the kernel's page cache, no
system call, and it never lets go of the GIL. Once it returns, the record is
the file's: it survives a ``kill -9`` of the process exactly as a WAL commit
with ``synchronous=NORMAL`` does (``durability="power"`` also ``msync``s
each record, like ``FULL``).

Segments live in ``<outbox>.journal/``. Each is created at its full size with
``posix_fallocate`` (a full disk fails there, never later inside a mapped
write), under a temporary name, locked with ``flock`` and then renamed; the
process holds the lock for as long as it uses the file. The process's sender
thread moves the records into the outbox in batches (:meth:`Journal.drain`):
one transaction inserts them and records, in the ``ingested`` table, how far
into the segment it got. When a segment is full the next one (prepared ahead
by the sender thread) takes over, and the full one is deleted once moved.

A segment whose lock is free belongs to a process that died. Any process
adopts it (:meth:`Journal.adopt`): it moves the records past the recorded
offset, then deletes the file. So every record is moved exactly once, whether
its process lived or was killed between any two steps.

A record is a frame (payload length, CRC-32 of the payload) and a payload
(body length, created_at, event_id and event lengths, then the three); the
unused rest of a segment is zeros. A torn record, which only a kill in the
middle of an append (its ``track()`` never returned) or a power loss can
leave, fails its CRC and is ignored with a warning. Files are created
``0600`` in a ``0700`` directory; they hold what the outbox holds: hashed
identifiers, never plaintext PII or the API key.
"""

from __future__ import annotations

import itertools
import logging
import mmap
import os
import secrets
import struct
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: track() commits to SQLite directly
    AVAILABLE = False
else:
    AVAILABLE = True

__all__ = [
    "AVAILABLE",
    "SEGMENT_BYTES",
    "Drained",
    "Journal",
    "Record",
    "RecordTooLarge",
    "journal_directory",
    "read_segment",
    "read_segments",
    "unmoved",
]

_log = logging.getLogger("roasproof")
#: Written first in every segment; a file without it is not ours.
MAGIC = b"roasproof-journal-1\n"
_FRAME = struct.Struct("<II")  # payload length, CRC-32 of the payload
_FIELDS = struct.Struct("<IdHH")  # body length, created_at, event_id length, event length
#: The size of a segment file (reserved on disk when it is created).
SEGMENT_BYTES = 1 << 20
_SUFFIX = ".log"
_TEMP_SUFFIX = ".tmp"
_TEMP_GRACE = 60.0

#: event_id, event name, JSON body, created_at (epoch seconds)
Record = tuple[str, str, bytes, float]


class Sink(Protocol):
    """What the journal moves records into: the SQLite outbox."""

    path: Path
    durability: str

    def ingest(
        self, records: Sequence[Record], segment: str, offset: int, forget: Sequence[str]
    ) -> int:
        """Insert ``records`` (duplicates ignored) and note ``segment`` moved up to ``offset``."""
        ...

    def ingested_offset(self, segment: str) -> int:
        """How far ``segment`` was moved already (0: not at all)."""
        ...


@dataclass(frozen=True, slots=True)
class Drained:
    """What one drain or adoption moved into the outbox."""

    added: int = 0
    duplicates: int = 0

    def __add__(self, other: Drained) -> Drained:
        return Drained(self.added + other.added, self.duplicates + other.duplicates)


class RecordTooLarge(Exception):
    """An event too large for a journal segment: the engine commits it to the outbox."""


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    map: mmap.mmap
    size: int
    records: list[Record] = field(default_factory=list)

    def close(self) -> None:
        self.map.close()
        os.close(self.fd)


class Journal:
    """This process's segment files for the outbox ``sink``; see the module docstring."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.directory = journal_directory(sink.path)
        self._sync = sink.durability == "power"
        self._lock = threading.Lock()  # appends vs. taking records
        self._drain_lock = threading.Lock()  # one drain at a time
        self._current: _Segment | None = None
        self._spare: _Segment | None = None  # the next segment, prepared by the sender
        self._retired: list[_Segment] = []  # full, not yet fully moved
        self._pending = 0  # records in all segments, not yet moved
        self._forget: list[str] = []  # deleted segments whose offsets can go
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"
        self._numbers = itertools.count(1)

    # -- the request's side ------------------------------------------------------

    def append(self, event_id: str, event: str, body: bytes, now: float) -> bool:
        """Make the event durable; ``True`` if it is the first record waiting to be moved.

        Raises :class:`RecordTooLarge` for an event no segment can hold, and
        ``OSError`` when a new segment cannot be created (disk full).
        """
        ids, name = event_id.encode(), event.encode()
        payload = b"".join((_FIELDS.pack(len(body), now, len(ids), len(name)), ids, name, body))
        crc, size = zlib.crc32(payload), _FRAME.size + len(payload)
        with self._lock:
            segment = self._current
            if segment is None or segment.size + size > SEGMENT_BYTES:
                if size > SEGMENT_BYTES - len(MAGIC):
                    raise RecordTooLarge(f"{size} bytes")
                segment = self._next_segment()
            start = segment.size
            end = start + size
            # The frame, then the payload: written straight into the map, no joined copy.
            _FRAME.pack_into(segment.map, start, len(payload), crc)
            segment.map[start + _FRAME.size : end] = payload
            if self._sync:
                aligned = start - start % mmap.ALLOCATIONGRANULARITY
                segment.map.flush(aligned, end - aligned)
            segment.size = end
            segment.records.append((event_id, event, body, now))
            self._pending += 1
            return self._pending == 1

    def _next_segment(self) -> _Segment:
        """Retire the full segment for the spare (or a new one, if none is ready yet)."""
        fresh, self._spare = self._spare, None
        if fresh is None:
            fresh = self._open()
        if self._current is not None:
            self._retired.append(self._current)
        self._current = fresh
        return fresh

    @property
    def pending(self) -> int:
        """Records written and not yet moved into the outbox (cheap: read on every track)."""
        return self._pending

    # -- the sender's side -------------------------------------------------------

    def drain(self) -> Drained:
        """Move every record written so far into the outbox, in one transaction per segment.

        On a storage error the records stay (in memory and in their segment)
        for the next drain, and the error propagates.
        """
        with self._drain_lock:
            self._prepare_spare()
            moved = Drained()
            while self._retired:
                segment = self._retired[0]
                moved += self._move(segment)
                with self._lock:
                    self._retired.pop(0)
                self._delete(segment)
            current = self._current
            if current is not None:
                moved += self._move(current)
            return moved

    def _prepare_spare(self) -> None:
        """Past half of the segment in use, create the next one here, off the track() path."""
        current = self._current
        if self._spare is not None or current is None or current.size < SEGMENT_BYTES // 2:
            return
        spare = self._open()
        with self._lock:  # only this (serialized) drain sets it; append only takes it
            self._spare = spare

    def _move(self, segment: _Segment) -> Drained:
        with self._lock:
            records, segment.records = segment.records, []
            offset = segment.size
        if not records:
            return Drained()
        try:
            added = self.sink.ingest(records, segment.path.name, offset, self._forget)
        except BaseException:
            with self._lock:
                segment.records[:0] = records
            raise
        with self._lock:
            self._pending -= len(records)
        self._forget = []
        return Drained(added, len(records) - added)

    def _delete(self, segment: _Segment) -> None:
        """Delete a fully moved segment (its offset row goes with the next ingest)."""
        try:
            os.unlink(segment.path)
            self._forget.append(segment.path.name)
        except OSError as exc:  # the offset row keeps it from being moved twice
            _log.warning("roasproof could not delete the journal segment %s: %s", segment.path, exc)
        segment.close()

    def adopt(self) -> Drained:
        """Move the records of segments left by processes that died, then delete them."""
        try:
            names = sorted(os.listdir(self.directory))
        except (FileNotFoundError, NotADirectoryError):  # nothing was ever journaled here
            return Drained()
        moved = Drained()
        for name in names:
            if name.endswith((_SUFFIX, _TEMP_SUFFIX)):
                moved += self._adopt(self.directory / name)
        return moved

    def _adopt(self, path: Path) -> Drained:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return Drained()
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return Drained()  # its process is alive (perhaps this one)
            if os.fstat(fd).st_nlink == 0:
                return Drained()  # another process adopted it while we waited
            if path.name.endswith(_TEMP_SUFFIX):
                # Its process died creating it (no records yet), unless it is still young:
                # a live process locks its new segment right after creating it.
                if time.time() - os.fstat(fd).st_mtime > _TEMP_GRACE:
                    os.unlink(path)
                return Drained()
            data = _read_all(fd)
            if not data.startswith(MAGIC):
                return self._quarantine(path)
            done = self.sink.ingested_offset(path.name)
            records = [record for record, end in read_segment(data, path) if end > done]
            added = 0
            if records:
                added = self.sink.ingest(records, path.name, len(data), self._forget)
                self._forget = []
            os.unlink(path)
            self._forget.append(path.name)
            if records:
                _log.info(
                    "roasproof moved %d events left by a process that exited into the outbox",
                    len(records),
                )
            return Drained(added, len(records) - added)
        finally:
            os.close(fd)

    @staticmethod
    def _quarantine(path: Path) -> Drained:
        bad = path.with_name(path.name + ".unreadable")
        os.replace(path, bad)
        _log.error("roasproof: %s is not a roasproof journal segment; moved to %s", path, bad)
        return Drained()

    # -- files ---------------------------------------------------------------------

    def _open(self) -> _Segment:
        """A new segment: created at full size under a temporary name, locked, then renamed.

        An adopter never sees a final name without its lock held, so it can
        never take a segment its process is about to write.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = f"{self._name}-{next(self._numbers):06d}"
        temp = self.directory / f".{stem}{_TEMP_SUFFIX}"
        fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _reserve(fd, SEGMENT_BYTES)
            mapped = mmap.mmap(fd, SEGMENT_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        try:
            mapped[: len(MAGIC)] = MAGIC
            path = self.directory / f"{stem}{_SUFFIX}"
            os.rename(temp, path)
            if self._sync:
                mapped.flush()
                _fsync_directory(self.directory)
        except BaseException:
            mapped.close()
            os.close(fd)
            temp.unlink(missing_ok=True)
            raise
        return _Segment(path, fd, mapped, len(MAGIC))

    def close(self) -> Drained:
        """Move what is left, then let go of the files (anything unmoved is adopted later)."""
        try:
            return self.drain()
        finally:
            with self._lock:
                segments = self._segments()
                self._retired, self._current, self._spare = [], None, None
                self._pending = 0
            for segment in segments:
                if segment.records:
                    segment.close()  # unlocked: the next process adopts it
                else:
                    self._delete(segment)

    def _segments(self) -> list[_Segment]:
        extra = [s for s in (self._current, self._spare) if s is not None]
        return [*self._retired, *extra]

    # -- fork --------------------------------------------------------------------------

    def prepare_fork(self) -> None:
        """Hold the append lock through the fork: no record is half written."""
        self._lock.acquire()

    def after_fork(self, child: bool) -> None:
        """Parent: release. Child: give the parent's segments back, start its own."""
        if not child:
            self._lock.release()
            return
        # Closing the child's copies leaves the parent's locks in place, and lets
        # the segments be adopted once the parent exits, whatever the child does.
        for segment in self._segments():
            segment.close()  # the child's mapping and descriptor only
        self._lock = threading.Lock()
        self._drain_lock = threading.Lock()
        self._current = None
        self._spare = None
        self._retired = []
        self._pending = 0
        self._forget = []
        self._name = f"{os.getpid()}-{secrets.token_hex(4)}"


def read_segment(data: bytes, path: Path | None = None) -> Iterator[tuple[Record, int]]:
    """The records of a segment's bytes, each with the offset where it ends."""
    offset = len(MAGIC)
    while offset < len(data):
        frame_end = offset + _FRAME.size
        if frame_end > len(data):
            break
        length, crc = _FRAME.unpack_from(data, offset)
        if length == 0:  # the unused, zero-filled rest of the segment
            break
        payload = data[frame_end : frame_end + length]
        if len(payload) != length or zlib.crc32(payload) != crc or length < _FIELDS.size:
            break
        body_length, created_at, id_length, name_length = _FIELDS.unpack_from(payload)
        start = _FIELDS.size
        event_id = payload[start : start + id_length].decode()
        start += id_length
        event = payload[start : start + name_length].decode()
        body = payload[start + name_length : start + name_length + body_length]
        offset = frame_end + length
        yield (event_id, event, body, created_at), offset
    if data[offset:].strip(b"\0"):
        _log.warning(
            "roasproof journal segment %s ends with a torn record (its process was killed "
            "while appending it, or the power failed); it is ignored",
            path,
        )


def journal_directory(outbox: Path) -> Path:
    """Where the journal segments of the outbox at ``outbox`` live."""
    # Not "-journal": SQLite would take that name for its own rollback journal.
    return outbox.with_name(outbox.name + ".journal")


def read_segments(outbox: Path) -> dict[str, bytes]:
    """The bytes of every segment in ``outbox``'s journal (for ``roasproof outbox status``).

    Read without locking: a segment being written may hold one more record a
    moment later. Read them before the outbox's counts, in one read
    transaction, so that a record moved meanwhile is counted once.
    """
    segments: dict[str, bytes] = {}
    try:
        paths = sorted(journal_directory(outbox).iterdir())
    except FileNotFoundError:
        return segments
    for path in paths:
        if path.name.endswith(_SUFFIX):
            try:
                data = path.read_bytes()
            except FileNotFoundError:  # moved and deleted meanwhile
                continue
            if data.startswith(MAGIC):
                segments[path.name] = data
    return segments


def unmoved(segment: str, data: bytes, moved_to: int) -> list[Record]:
    """The records of a segment past the offset already moved into the outbox."""
    return [record for record, end in read_segment(data, Path(segment)) if end > moved_to]


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _reserve(fd: int, size: int) -> None:
    """Give the file its blocks now: a mapped write past the disk's end would be a SIGBUS."""
    os.posix_fallocate(fd, 0, size)  # (glibc writes zeros where the filesystem cannot)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
