"""Chunk-sized slots in a file that the local executor and its pool processes all map.

A pool process puts a chunk's PCM in a slot and sends back only its record; the
executor reads the PCM from the slot. On the benchmark VM, moving a book's
1.8 GB of audio through the pool's pipes cost as much as writing it twice.

A file in the job's folder, not POSIX shared memory: a segment in /dev/shm
outlives a ``kill -9`` of the run (its resource tracker dies with the process
group) and Docker gives /dev/shm 64 MiB; the file goes with the job's other
files and is reused by the next run. Its pages are rewritten in place, so the
page cache, not the disk, carries the traffic.
"""

from __future__ import annotations

import contextlib
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

from ttsbatch.storage.files import FILE_MODE

#: A slot holds one chunk's PCM: 2 MiB is 45 s at 22 kHz, far above a chunk's
#: length. A longer chunk travels through the pipe instead.
SLOT_BYTES = 2 * 1024 * 1024


class Slots:
    """``count`` slots of :data:`SLOT_BYTES` mapped from the file at ``path``."""

    def __init__(self, path: Path, count: int) -> None:
        self.path = path
        self.count = count
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, count * SLOT_BYTES)
        finally:
            os.close(fd)

    @classmethod
    def create(cls, path: Path, count: int) -> Slots | None:
        """Make the file and map it; None if the disk cannot hold it (then use the pipe).

        The space is reserved up front where the OS can: writing to a page of
        a sparse file on a full disk would kill the writer with SIGBUS.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                if hasattr(os, "posix_fallocate"):
                    os.posix_fallocate(fd, 0, count * SLOT_BYTES)
                else:
                    os.ftruncate(fd, count * SLOT_BYTES)
            finally:
                os.close(fd)
            return cls(path, count)
        except OSError:
            path.unlink(missing_ok=True)
            return None

    def put(self, slot: int, data: bytes) -> bool:
        """Copy ``data`` into ``slot``; False if it does not fit (send it another way)."""
        if len(data) > SLOT_BYTES:
            return False
        start = slot * SLOT_BYTES
        self._map[start : start + len(data)] = data
        return True

    @contextlib.contextmanager
    def view(self, slot: int, size: int) -> Iterator[memoryview]:
        """Lend the first ``size`` bytes of ``slot`` without copying them."""
        start = slot * SLOT_BYTES
        with memoryview(self._map) as whole, whole[start : start + size] as part:
            yield part

    def close(self) -> None:
        """Unmap the file (it stays, for the next run or the job's cleanup)."""
        # A view still held by an error's traceback makes close() raise
        # BufferError; that must not hide the error. The mapping then goes
        # with the process.
        with contextlib.suppress(BufferError):
            self._map.close()
