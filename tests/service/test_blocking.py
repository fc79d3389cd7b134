"""The decision threads' hop (service/blocking.py): results, errors, context, cancellation."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service.blocking import run_blocking

_REQUEST = contextvars.ContextVar("request", default="none")


def test_result_error_and_context_reach_the_caller() -> None:
    def work(x: int, *, y: int) -> tuple[int, str, str]:
        return x + y, _REQUEST.get(), threading.current_thread().name

    def fail() -> None:
        msg = "boom"
        raise KeyError(msg)

    async def main() -> tuple[int, str, str]:
        _REQUEST.set("r-1")
        with pytest.raises(KeyError, match="boom"):
            await run_blocking(pool, fail)
        return await run_blocking(pool, work, 2, y=3)

    with ThreadPoolExecutor(1, thread_name_prefix="decide") as pool:
        total, seen, thread = asyncio.run(main())
    assert total == 5  # noqa: PLR2004
    assert seen == "r-1"  # the caller's context variables, as anyio's hop copies them
    assert thread.startswith("decide")


def test_a_cancelled_caller_waits_until_the_thread_is_done() -> None:
    """Admission frees a slot when its request ends: a cancelled request must not end while its
    decision still runs in a thread, or more decisions than slots would run at once."""
    started, release = threading.Event(), threading.Event()
    finished: list[float] = []

    def work() -> str:
        started.set()
        release.wait(5)
        finished.append(time.monotonic())
        return "done"

    async def main() -> float:
        task = asyncio.create_task(run_blocking(pool, work))
        while not started.is_set():
            await asyncio.sleep(0.001)
        task.cancel()
        await asyncio.sleep(0.05)
        assert not task.done()  # still waiting for the thread, despite the cancellation
        task.cancel()  # a second cancellation does not cut the wait short either
        await asyncio.sleep(0.02)
        assert not task.done()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        ended = asyncio.run(main())
    assert finished
    assert finished[0] <= ended


@pytest.mark.parametrize(("threads", "slots", "expected"), [(0, 5, 5), (2, 16, 2), (3, 1, 3)])
def test_decision_threads_default_to_one_per_admission_slot(
    tmp_path: Path, threads: int, slots: int, expected: int
) -> None:
    from service.app import _open_runtime
    from service.config import Settings

    settings = Settings(
        policy="uniform",
        store="sqlite",
        sqlite_path=str(tmp_path / "nbi.sqlite3"),
        decision_threads=threads,
        max_concurrent_requests=slots,
    )
    runtime = _open_runtime(settings)
    try:
        assert runtime.decision_pool._max_workers == expected  # noqa: SLF001
    finally:
        runtime.decision_pool.shutdown()
        runtime.capacity.close()
        runtime.store.close()


def test_decision_threads_out_of_range_is_refused() -> None:
    from pydantic import ValidationError

    from service.config import Settings

    with pytest.raises(ValidationError, match="decision_threads"):
        Settings(decision_threads=-1)
