"""Admission control: a bounded number of API requests at work, a bounded queue, a deadline.

Under overload a service that accepts everything answers everyone late: each request waits
behind all the others, the thread pool and the store queue grow, latency and memory climb.
This pure ASGI middleware sits behind the request guard (so a body that trickles in never
holds a slot: the guard reads it first, under its own timeout), for ``/v1`` routes only
(``/healthz``, ``/readyz`` and ``/metrics`` always answer), per worker process:

1. **Store down** (``service/outage.py``): while the breaker is open, 503 ``store_unavailable``
   at once with ``Retry-After``; the body is never parsed.
2. **At most** ``max_concurrent`` requests are processed at once; the next
   ``max_queued`` wait in FIFO order; a request beyond the queue is answered 503
   ``overloaded`` with ``Retry-After: 1`` at once.
3. **Deadline**: a request that waited ``queue_timeout`` seconds without being admitted is
   answered 503 (``queue_timeout``) without any work: no body parsed, nothing stored. When
   the queue has stayed non-empty for 100 ms (sustained overload, not a burst) the wait
   allowed drops to 5 ms (CoDel's "standing queue" rule), so the requests that are accepted
   stay fast instead of all waiting out the full deadline.
4. **Client gone**: a request whose client disconnected while it waited is dropped before
   any work (so is one whose client left while the guard read its body); counted as
   ``client_gone``.
5. **Analyses in their own lane**: the model analyses (``GET /v1/models/compare``,
   ``/v1/models/{version}/importance`` and ``/card``, seconds to a minute of work each) get
   ``max_analyses`` slots of their own, with no queue, instead of the decisions' slots: an
   analysis never holds a slot a recommendation needs (two long analyses used to answer every
   recommendation 503 until they finished), and a second analysis while one runs is answered
   503 at once (``analysis_busy``), with ``Retry-After`` of a few seconds.

Every refusal is counted in ``nbi_requests_shed_total{reason}`` (and ``nbi_errors_total``);
``nbi_requests_in_flight`` and ``nbi_requests_queued`` show the current load. Refused requests
wrote nothing, so a case system may retry them safely (with the same ``Idempotency-Key``).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import problem_response, scrub, store_unavailable_response
from service.guard import CLIENT_RECEIVE
from service.metrics import ServiceMetrics

ADMITTED_PREFIX = "/v1/"
"""Only API routes are admission-controlled; health and metrics always answer."""
ANALYSIS_PATH = re.compile(r"/v1/models/(?:compare|[^/]+/(?:importance|card))")
"""The model analyses (``GET`` only): their own slots, never the decisions'."""
ANALYSIS_RETRY_AFTER = "5"


class AdmissionMiddleware:
    """Bound the concurrent and queued ``/v1`` requests of one process; shed the excess fast.

    Parameters
    ----------
    app
        The wrapped ASGI app (the request guard).
    max_concurrent
        Requests processed at once.
    max_queued
        Requests that may wait for a slot; more are refused at once.
    queue_timeout
        Longest wait for a slot, in seconds; a request that waited longer is refused.
    overload_wait, overload_interval
        Once the queue has not been empty for ``overload_interval`` seconds (a standing
        queue, i.e. sustained overload rather than a burst), a newly queued request may
        wait only ``overload_wait`` seconds (the CoDel idea: keep the standing queue short).
    """

    def __init__(  # noqa: PLR0913 (one keyword per admission rule)
        self,
        app: ASGIApp,
        *,
        max_concurrent: int,
        max_queued: int,
        queue_timeout: float,
        overload_wait: float = 0.005,
        overload_interval: float = 0.1,
        max_analyses: int = 1,
    ) -> None:
        self.app = app
        self.queue_timeout = queue_timeout
        self.overload_wait = overload_wait
        self.overload_interval = overload_interval
        self._decisions = _Lane(max_concurrent, max_queued)
        self._analyses = _Lane(max_analyses, 0)

    @property
    def max_concurrent(self) -> int:
        """Requests processed at once (the analyses' own slots not counted)."""
        return self._decisions.max_concurrent

    @property
    def max_queued(self) -> int:
        """Requests that may wait for a slot."""
        return self._decisions.max_queued

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(ADMITTED_PREFIX):
            await self.app(scope, receive, send)
            return
        state = scope["app"].state
        metrics: ServiceMetrics | None = getattr(state, "metrics", None)
        breaker = getattr(state, "breaker", None)
        if (
            breaker is not None
            and breaker.is_open()
            and not await run_in_threadpool(breaker.recheck)
        ):
            await self._refuse(scope, receive, send, metrics, "store_unavailable", breaker)
            return
        analysis = scope["method"] == "GET" and ANALYSIS_PATH.fullmatch(scope["path"]) is not None
        lane = self._analyses if analysis else self._decisions
        waited = lane.active >= lane.max_concurrent or bool(lane.waiters)
        if waited:
            if len(lane.waiters) >= lane.max_queued:
                reason = "analysis_busy" if analysis else "overloaded"
                await self._refuse(scope, receive, send, metrics, reason)
                return
            if not await self._wait_for_slot(lane, metrics):
                await self._refuse(scope, receive, send, metrics, "queue_timeout")
                return
        else:
            lane.active += 1
            lane.last_empty = time.monotonic()
        self._report(metrics)
        try:
            if waited and await _client_gone(scope):
                if metrics is not None:
                    metrics.shed.labels("client_gone").inc()
                return  # it left while it waited: no work, no answer
            await self.app(scope, receive, send)
        finally:
            lane.release()
            self._report(metrics)

    def _report(self, metrics: ServiceMetrics | None) -> None:
        if metrics is not None:
            metrics.in_flight.set(self._decisions.active + self._analyses.active)

    async def _wait_for_slot(self, lane: _Lane, metrics: ServiceMetrics | None) -> bool:
        """Queue for a slot; True once admitted (the slot is then held), False on timeout."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        lane.waiters.append(waiter)
        if metrics is not None:
            metrics.queued.set(len(lane.waiters))
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self._timeout(lane))
        except TimeoutError:
            if waiter.done():  # handed a slot just as the deadline passed: give it back
                lane.release()
            else:
                waiter.cancel()
            return False
        finally:
            if waiter in lane.waiters:
                lane.waiters.remove(waiter)
            if metrics is not None:
                metrics.queued.set(len(lane.waiters))
        return True

    def _timeout(self, lane: _Lane) -> float:
        """The wait allowed now: the full deadline after the queue was empty recently (a
        burst), the short ``overload_wait`` when it has stayed non-empty for a whole
        ``overload_interval`` (a standing queue: waiting would only add latency)."""
        standing = time.monotonic() - lane.last_empty > self.overload_interval
        return min(self.queue_timeout, self.overload_wait) if standing else self.queue_timeout

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        metrics: ServiceMetrics | None,
        reason: str,
        breaker: Any = None,
    ) -> None:
        if metrics is not None:
            metrics.shed.labels(reason).inc()
        instance = scrub(scope["path"])
        if breaker is not None:
            if metrics is not None:
                metrics.errors.labels("store_unavailable").inc()
            response = store_unavailable_response(breaker.retry_after_header(), instance)
        else:
            if metrics is not None:
                metrics.errors.labels("overloaded").inc()
            if reason == "analysis_busy":
                detail = (
                    "Another model analysis is running in this process (they take seconds "
                    "each); nothing was processed. Retry when it has finished."
                )
            elif reason == "overloaded":
                detail = "The service is at capacity; nothing was processed or stored. Retry later."
            else:
                detail = (
                    "The request waited too long for a free slot; nothing was processed or "
                    "stored. Retry later."
                )
            response = problem_response(
                503,
                "overloaded",
                "Service overloaded",
                detail,
                instance=instance,
                headers={"Retry-After": ANALYSIS_RETRY_AFTER if reason == "analysis_busy" else "1"},
            )
        # The connection stays open: the body (at most max_body_bytes) is already on its way
        # and the server discards it; closing would make every retry pay a new handshake.
        await response(scope, receive, send)


class _Lane:
    """The slots of one kind of request: at most ``max_concurrent`` at work, ``max_queued``
    waiting in FIFO order."""

    __slots__ = ("active", "last_empty", "max_concurrent", "max_queued", "waiters")

    def __init__(self, max_concurrent: int, max_queued: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self.active = 0
        self.last_empty = time.monotonic()
        self.waiters: deque[asyncio.Future[None]] = deque()

    def release(self) -> None:
        """Hand the slot to the oldest live waiter, or free it."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on; active is unchanged
                return
        self.active -= 1
        self.last_empty = time.monotonic()


async def _client_gone(scope: Scope) -> bool:
    """True if the client disconnected (asked without blocking: the guard has read the body,
    so the connection's next message can only be a disconnect)."""
    receive = scope.get(CLIENT_RECEIVE)
    if receive is None:
        return False
    try:
        message = await asyncio.wait_for(receive(), timeout=0.0005)
    except TimeoutError:
        return False
    return bool(message["type"] == "http.disconnect")
