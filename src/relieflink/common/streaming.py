"""What the streaming imports share: a file's rows a chunk at a time, and the keys seen so far
in a compact form (a file of millions of rows is checked without holding it)."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Iterator
from itertools import islice
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

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
    before it is merged.

    Keys are text (hashed, :meth:`first_line` and :meth:`add`, a row at a time) or the caller's
    own exact 64-bit integers (:meth:`first_lines` and :meth:`add_many`, a chunk at a time,
    without a Python call a key); one set holds one kind."""

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

    def _flush(self) -> None:
        if self.buffer:
            self.hashes, self.lines = _insert(
                self.hashes,
                self.lines,
                np.fromiter(self.buffer, np.uint64),
                np.fromiter(self.buffer.values(), np.int64),
            )
            self.buffer = {}

    def first_lines(self, keys: NDArray[np.uint64]) -> NDArray[np.int64]:
        """The line each of ``keys`` was first seen on (-1: not seen yet)."""
        self._flush()
        if not len(self.hashes):
            return np.full(len(keys), -1, dtype=np.int64)
        at = np.minimum(np.searchsorted(self.hashes, keys), len(self.hashes) - 1)
        return np.where(self.hashes[at] == keys, self.lines[at], -1)

    def add_many(self, keys: NDArray[np.uint64], lines: NDArray[np.int64]) -> None:
        """Remember ``keys`` (distinct, none seen yet) as first seen on ``lines``."""
        self._flush()
        self.hashes, self.lines = _insert(self.hashes, self.lines, keys, lines)


def _insert(
    hashes: NDArray[np.uint64],
    lines: NDArray[np.int64],
    keys: NDArray[np.uint64],
    at: NDArray[np.int64],
) -> tuple[NDArray[np.uint64], NDArray[np.int64]]:
    """The sorted ``hashes`` (and their ``lines``) with ``keys`` (and ``at``) put in place."""
    order = np.argsort(keys, kind="stable")
    where = np.searchsorted(hashes, keys[order])
    return np.insert(hashes, where, keys[order]), np.insert(lines, where, at[order])
