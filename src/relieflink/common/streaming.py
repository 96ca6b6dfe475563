"""What the streaming imports share: a file's rows a chunk at a time, and the keys seen so far
in a compact form (a file of millions of rows is checked without holding it)."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from itertools import islice
from typing import TypeVar

import numpy as np

T = TypeVar("T")
BUFFER = 20_000
#: At most this many row errors are reported for one refused file (every import: the registry
#: files and the requests file); the count of bad rows is still exact.
MAX_REPORTED_ERRORS = 1000


def chunks(rows: Iterator[T], size: int) -> Iterator[list[T]]:
    """``rows`` in lists of ``size`` (the last one shorter), read as they are needed.

    While the chunks are being read, the objects alive before the first one (the modules, the
    session: a few hundred thousand) are frozen out of the cycle collector (``gc.freeze``):
    each chunk makes tens of thousands of objects, which set off full collections that would
    scan them all again, again and again. A 50,000-row ``requests import`` on PostgreSQL
    (load ~15, two pairs of runs): 6.6 -> 4.8 and 5.9 -> 4.9 s CPU, the same peak memory
    (~240 MB). They are unfrozen at the end."""
    gc.freeze()
    try:
        while chunk := list(islice(rows, size)):
            yield chunk
    finally:
        gc.unfreeze()


class SeenKeys:
    """The keys of the rows read so far, as 64-bit hashes with their lines: a sorted array and a
    buffer merged into it when it grows, so memory stays at ~12 bytes a row and each lookup is a
    binary search (10 million households: ~120 MB). ``buffer``: the fewest keys the buffer holds
    before it is merged."""

    def __init__(self, buffer: int = BUFFER) -> None:
        self.least = buffer
        self.hashes = np.empty(0, dtype=np.uint64)
        self.lines = np.empty(0, dtype=np.int64)
        self.buffer: dict[int, int] = {}

    @staticmethod
    def digest(key: str) -> int:
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")

    def first_line(self, key: str) -> int | None:
        """The line ``key`` was first seen on (None: not seen yet)."""
        h = self.digest(key)
        if h in self.buffer:
            return self.buffer[h]
        i = int(np.searchsorted(self.hashes, np.uint64(h)))
        if i < len(self.hashes) and int(self.hashes[i]) == h:
            return int(self.lines[i])
        return None

    def add(self, key: str, line: int) -> None:
        """Remember ``key`` as first seen on ``line``."""
        self.buffer[self.digest(key)] = line
        if len(self.buffer) > max(self.least, len(self.hashes) // 4):
            hashes = np.concatenate([self.hashes, np.fromiter(self.buffer, np.uint64)])
            lines = np.concatenate([self.lines, np.fromiter(self.buffer.values(), np.int64)])
            order = np.argsort(hashes, kind="stable")
            self.hashes, self.lines, self.buffer = hashes[order], lines[order], {}
