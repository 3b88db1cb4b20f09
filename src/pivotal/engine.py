"""Where independent work runs: in-process, a local process pool, or a Dask cluster.

Counterfactual solves, core separations and agents' best responses are independent tasks; the
mechanisms hand them to an :class:`Engine` and stay unaware of where they run (DESIGN.md
section 5).

- :class:`InProcessEngine` (default): runs tasks one after the other in this process.
- :class:`ProcessPoolEngine`: ``concurrent.futures.ProcessPoolExecutor`` with the *spawn* start
  method (HiGHS threads are not fork-safe).
- :class:`DaskEngine`: a ``dask.distributed`` cluster given by its scheduler address
  (optional extra ``pivotal[dask]``).

:func:`engine_from_spec` turns the CLI's ``--engine`` text (``inprocess``, ``processes``,
``processes:4``, ``dask://HOST:PORT``) into an engine. Tasks must be picklable top-level
functions with picklable arguments.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import Any, Protocol, TypeVar

from pivotal.errors import InputError, PivotalError

T = TypeVar("T")
R = TypeVar("R")

ResultCallback = Callable[[int, Any], None]


class Engine(Protocol):
    """Runs a function over independent inputs and returns the results in input order."""

    name: str

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: ResultCallback | None = None,
    ) -> list[R]:
        """``[fn(x) for x in items]``; ``on_result(index, result)`` fires as each one finishes."""
        ...

    def close(self) -> None:
        """Release workers and connections."""
        ...

    def __enter__(self) -> Engine:
        """Use the engine in a ``with`` block that closes it."""
        ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the engine."""
        ...


class _Closing:
    """Context-manager support shared by the engines."""

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self: Any) -> Any:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _collect(
    done: Iterable[Any],
    index_of: Callable[[Any], int],
    n: int,
    on_result: ResultCallback | None,
) -> list[Any]:
    """Results of finished futures in input order, reporting each as it completes."""
    results: list[Any] = [None] * n
    for future in done:
        index = index_of(future)
        result = future.result()
        results[index] = result
        if on_result is not None:
            on_result(index, result)
    return results


class InProcessEngine(_Closing):
    """Runs every task in the calling process, in order."""

    name = "inprocess"

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: ResultCallback | None = None,
    ) -> list[R]:
        """Apply ``fn`` to each item in turn."""
        results: list[R] = []
        for index, item in enumerate(items):
            result = fn(item)
            results.append(result)
            if on_result is not None:
                on_result(index, result)
        return results


class ProcessPoolEngine(_Closing):
    """A local pool of worker processes started with the spawn method.

    The pool starts lazily on the first :meth:`map` with two or more tasks and is reused until
    :meth:`close`.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and max_workers < 1:
            raise InputError(f"a process pool needs at least 1 worker, got {max_workers}")
        self.max_workers = max_workers or os.cpu_count() or 1
        self.name = f"processes:{self.max_workers}"
        self._pool: ProcessPoolExecutor | None = None

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: ResultCallback | None = None,
    ) -> list[R]:
        """Run the tasks on the pool; a task's exception is re-raised here."""
        if len(items) < 2:
            return InProcessEngine().map(fn, items, on_result)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.max_workers, mp_context=multiprocessing.get_context("spawn")
            )
        futures: dict[Future[R], int] = {
            self._pool.submit(fn, item): index for index, item in enumerate(items)
        }
        return _collect(as_completed(futures), futures.__getitem__, len(items), on_result)

    def close(self) -> None:
        """Shut the pool down."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class DaskEngine(_Closing):
    """Tasks on a ``dask.distributed`` cluster, given by its scheduler address."""

    def __init__(self, address: str) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise PivotalError(
                "the Dask engine needs dask.distributed: pip install 'pivotal[dask]'"
            ) from None
        try:
            self._client = Client(address, timeout="10s")  # type: ignore[no-untyped-call]
        except OSError as err:
            raise PivotalError(
                f"cannot reach the Dask scheduler at {address}: {err}; is it running?"
            ) from None
        self.name = f"dask://{address.removeprefix('tcp://')}"

    def map(
        self,
        fn: Callable[[T], R],
        items: Sequence[T],
        on_result: ResultCallback | None = None,
    ) -> list[R]:
        """Submit every task to the cluster and gather the results in input order."""
        from distributed import as_completed as dask_as_completed

        if not items:
            return []
        futures = self._client.map(fn, list(items), pure=False)
        position = {f.key: i for i, f in enumerate(futures)}
        done = dask_as_completed(futures)  # type: ignore[no-untyped-call]
        return _collect(done, lambda f: position[f.key], len(items), on_result)

    def close(self) -> None:
        """Disconnect from the scheduler (the cluster keeps running)."""
        self._client.close()  # type: ignore[no-untyped-call]


def engine_from_spec(spec: str | None) -> Engine:
    """Build an engine from ``inprocess``, ``processes``, ``processes:N`` or ``dask://HOST:PORT``."""
    text = (spec or "inprocess").strip()
    if text in {"inprocess", "in-process", "local"}:
        return InProcessEngine()
    if text == "processes":
        return ProcessPoolEngine()
    if text.startswith("processes:"):
        count = text.split(":", 1)[1]
        if not count.isdigit():
            raise InputError(
                f"engine '{text}': expected processes:N with a whole number N", field="engine"
            )
        return ProcessPoolEngine(int(count))
    if text.startswith("dask://"):
        address = text.removeprefix("dask://")
        if not address:
            raise InputError("engine dask:// needs the scheduler's HOST:PORT", field="engine")
        return DaskEngine(f"tcp://{address}")
    raise InputError(
        f"unknown engine '{text}'; use inprocess, processes, processes:N or dask://HOST:PORT",
        field="engine",
    )
