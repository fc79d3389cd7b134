"""Blocking work of the decision path on a dedicated thread pool.

The recommendation use case blocks (model scoring, store round trips), so it cannot run on the
event loop. Starlette's ``run_in_threadpool`` goes through anyio's worker threads and capacity
limiter: about 200 us of hop per request at saturation, a tenth of a 50-offer decision.
:func:`run_blocking` hands the call to a plain :class:`~concurrent.futures.ThreadPoolExecutor`
through the loop's ``run_in_executor`` instead, with anyio's two guarantees kept:

* the call runs in a copy of the caller's :mod:`contextvars` context;
* a cancelled caller (a client that went away) still waits for the call to finish before the
  cancellation propagates, so admission control (:mod:`service.admission`) never frees a slot
  while its work still runs in a thread, and the number of decisions at work stays bounded.

The pool is ``Runtime.decision_pool``: ``NBI_DECISION_THREADS`` threads, by default one per
admission slot (``max_concurrent_requests``), started on first use and shut down by the app's
lifespan. With fewer threads than slots an admitted request may wait for a thread; it still
holds its slot, so the bound on decisions at work holds either way.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Executor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def run_blocking(
    executor: Executor, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run ``fn(*args, **kwargs)`` on ``executor`` and await its result.

    Parameters
    ----------
    executor
        The thread pool.
    fn, args, kwargs
        The blocking call.

    Returns
    -------
    T
        What ``fn`` returned (its exception is raised here).

    Examples
    --------
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(1) as pool:
    ...     asyncio.run(run_blocking(pool, sum, [1, 2, 3]))
    6
    """
    context = contextvars.copy_context()
    call = functools.partial(context.run, fn, *args, **kwargs)
    future = asyncio.get_running_loop().run_in_executor(executor, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        # Not before the thread is done: the caller's slot covers the work until then.
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue
            except BaseException:  # noqa: BLE001 (its outcome is not the caller's any more)
                break
        raise
