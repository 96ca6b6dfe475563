"""Where sub-problems run: in-process, a local process pool, or a Dask distributed cluster.

All executors return results in input order, so the engine's decisions never depend on which
worker finished first.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = [
    "AsyncExecutor",
    "DaskExecutor",
    "Executor",
    "Handle",
    "LocalProcessExecutor",
    "SerialExecutor",
    "make_executor",
]

T = TypeVar("T")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


@runtime_checkable
class Executor(Protocol):
    """Runs a function over a list of picklable items, returning results in input order."""

    @property
    def workers(self) -> int:
        """How many items can run at the same time."""
        ...

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Apply ``fn`` to every item; results in input order."""
        ...

    def close(self) -> None:
        """Release resources (pools, client connections)."""
        ...


@runtime_checkable
class Handle(Protocol[R_co]):
    """A result that will be ready later (a ``concurrent.futures.Future`` or a Dask future)."""

    def result(self) -> R_co:
        """Wait for the result and return it."""
        ...


@runtime_checkable
class AsyncExecutor(Executor, Protocol):
    """An executor that can also start one item in the background (the engine's portfolio)."""

    def submit(self, fn: Callable[[T], R], item: T) -> Handle[R]:
        """Start ``fn(item)`` on a worker and return at once; ``.result()`` waits for it."""
        ...


class SerialExecutor:
    """Runs everything in the calling process (debugging, tiny problems)."""

    @property
    def workers(self) -> int:
        """Always 1."""
        return 1

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Apply ``fn`` in order."""
        return [fn(it) for it in items]

    def close(self) -> None:
        """Nothing to release."""


class LocalProcessExecutor:
    """A pool of local worker processes (``forkserver`` start method); the default.

    Parameters
    ----------
    workers
        Number of processes; ``None`` = all cores (``os.cpu_count()``).
    """

    def __init__(self, workers: int | None = None) -> None:
        n = workers if workers is not None else (os.cpu_count() or 1)
        if n < 1:
            raise ValueError(f"workers must be >= 1, got {n}")
        self._workers = n
        self._pool: ProcessPoolExecutor | None = None

    @property
    def workers(self) -> int:
        """Number of worker processes."""
        return self._workers

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Run ``fn`` over ``items`` on the pool (in-process when there is a single item)."""
        if len(items) <= 1 and self._pool is None:
            return [fn(it) for it in items]
        return list(self._ensure_pool().map(fn, items))

    def submit(self, fn: Callable[[T], R], item: T) -> Future[R]:
        """Start ``fn(item)`` on a pool process and return its future."""
        return self._ensure_pool().submit(fn, item)

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx)
        return self._pool

    def close(self) -> None:
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> LocalProcessExecutor:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class DaskExecutor:
    """Runs sub-problems on a Dask distributed cluster.

    Parameters
    ----------
    address
        Scheduler address such as ``tcp://host:8786``; ignored when ``client`` is given.
    client
        An existing ``distributed.Client`` (e.g. on a ``LocalCluster`` in tests).
    """

    def __init__(self, address: str | None = None, client: Any = None) -> None:
        if client is None:
            if not address:
                raise ValueError("DaskExecutor needs a scheduler address or a client")
            from distributed import Client

            client = Client(address)  # type: ignore[no-untyped-call]
            self._owned = True
        else:
            self._owned = False
        self.client = client

    @property
    def workers(self) -> int:
        """Total worker threads in the cluster (at least 1)."""
        info = self.client.scheduler_info()
        n = sum(int(w.get("nthreads", 1)) for w in info.get("workers", {}).values())
        return max(n, 1)

    def map(self, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
        """Submit every item and gather results in input order."""
        if not items:
            return []
        futures = self.client.map(fn, list(items), pure=False)
        return list(self.client.gather(futures))

    def submit(self, fn: Callable[[T], R], item: T) -> Handle[R]:
        """Start ``fn(item)`` on the cluster and return its Dask future."""
        fut: Handle[R] = self.client.submit(fn, item, pure=False)
        return fut

    def close(self) -> None:
        """Close the client if this executor created it."""
        if self._owned:
            self.client.close()


def make_executor(workers: int | None = None, scheduler: str | None = None) -> Executor:
    """Executor for the CLI flags: Dask when ``scheduler`` is given, else a process pool."""
    if scheduler:
        return DaskExecutor(scheduler)
    if workers == 1:
        return SerialExecutor()
    return LocalProcessExecutor(workers)
