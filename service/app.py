"""The FastAPI app factory and its lifespan.

``create_app(settings)`` builds the app; nothing is opened until the lifespan starts: it opens
the store, loads the catalog and the newest policy snapshot (or a fresh policy), builds the
metrics registry, starts the settlement sweep and either in-process learning or the model
watcher (``learning="worker"``), and closes everything on shutdown.

Two ASGI middlewares wrap every request: one times it per route template and status class
(``nbi_http_request_duration_seconds``), one refuses bodies over ``max_body_bytes`` (413) and
JSON with ``NaN``/``Infinity`` (422) before any parsing by FastAPI.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api import build_router
from service.capacity import CapacityTracker
from service.config import Settings, get_settings
from service.errors import install_error_handlers, problem_response, scrub
from service.learning import InProcessLearning
from service.metrics import ServiceMetrics
from service.model_watcher import ModelWatcher, PolicyRef
from service.runtime import Runtime, build_catalog, build_experiment, initial_policy
from service.settle import Sweeper
from service.store.factory import make_store

logger = logging.getLogger("nbi.app")

API_VERSION = "1.0.0"
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _NonFiniteNumberError(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFiniteNumberError(name)


class TimingMiddleware:
    """Record latency per route template and count requests per status class."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status_code = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics: ServiceMetrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                metrics.observe_request(
                    template,
                    scope["method"],
                    f"{status_code // 100}xx",
                    time.perf_counter() - start,
                )


class BodyGuardMiddleware:
    """Refuse oversize bodies (413) and JSON containing NaN or Infinity (422)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared, content_type = _body_headers(scope["headers"])
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._reply(scope, receive, send, too_large=True)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._reply(scope, receive, send, too_large=True)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body", False))
        body = b"".join(chunks)
        if body and "json" in content_type and _has_non_finite(body):
            await self._reply(scope, receive, send, too_large=False)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _reply(self, scope: Scope, receive: Receive, send: Send, *, too_large: bool) -> None:
        metrics: ServiceMetrics | None = getattr(scope["app"].state, "metrics", None)
        if too_large:
            kind = "payload_too_large"
            response = problem_response(
                status.HTTP_413_CONTENT_TOO_LARGE,
                kind,
                "Content too large",
                f"The request body exceeds {self.max_body_bytes} bytes",
                instance=scrub(scope["path"]),
            )
        else:
            kind = "validation"
            response = problem_response(
                status.HTTP_422_UNPROCESSABLE_CONTENT,
                kind,
                "Invalid request",
                "JSON numbers must be finite: NaN and Infinity are not allowed",
                instance=scrub(scope["path"]),
                errors=[{"loc": ["body"], "msg": "non-finite number", "type": "finite_number"}],
            )
        if metrics is not None:
            metrics.errors.labels(kind).inc()
        await response(scope, receive, send)


def _body_headers(raw: Iterable[tuple[bytes, bytes]]) -> tuple[str, str]:
    """``Content-Length`` and ``Content-Type`` of a request (last one wins; ``""`` if absent).

    Examples
    --------
    >>> _body_headers([(b"Content-Type", b"application/json"), (b"content-length", b"12")])
    ('12', 'application/json')
    """
    length = content_type = b""
    for name, value in raw:
        if len(name) == len(b"content-length") and name.lower() == b"content-length":
            length = value
        elif len(name) == len(b"content-type") and name.lower() == b"content-type":
            content_type = value
    return length.decode("latin-1"), content_type.decode("latin-1")


def _has_non_finite(body: bytes) -> bool:
    """True when ``body`` is JSON with a ``NaN``/``Infinity`` constant.

    Examples
    --------
    >>> _has_non_finite(b'{"a": NaN}'), _has_non_finite(b'{"a": "NaN"}'), _has_non_finite(b"{}")
    (True, False, False)
    """
    if b"\x00" not in body and b"NaN" not in body and b"Infinity" not in body:
        # Without NUL bytes the body cannot be UTF-16/32 (which ``json.loads`` would detect),
        # so a constant would have to appear as these ASCII bytes: nothing to parse for.
        return False
    try:
        json.loads(body, parse_constant=_reject_constant)
    except _NonFiniteNumberError:
        return True
    except ValueError:
        return False  # invalid JSON: FastAPI answers 422 itself
    return False


def _open_runtime(settings: Settings) -> Runtime:
    store = make_store(settings)
    try:
        catalog = build_catalog(settings)
        policy = initial_policy(settings, store)
        metrics = ServiceMetrics(ips_window=settings.ips_window)
        runtime = Runtime(
            settings=settings,
            store=store,
            catalog=catalog,
            experiment=build_experiment(settings),
            policy=PolicyRef(policy),
            metrics=metrics,
            capacity=CapacityTracker(catalog),
        )
    except BaseException:
        store.close()
        raise
    metrics.control_share_configured.set(settings.control_share)
    metrics.set_model(policy.model_version, policy.name, policy.n_updates, time.time())
    metrics.pending.set(store.pending_count())
    return runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the decision service app (resources open in the lifespan).

    Examples
    --------
    >>> app = create_app(Settings(policy="uniform"))
    >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/v1"))[:2]
    ['/v1/decisions/{event_id}/assignment', '/v1/experiment/summary']
    """
    cfg = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = _open_runtime(cfg)
        app.state.runtime = runtime
        app.state.metrics = runtime.metrics
        sweeper = Sweeper(
            runtime.store, interval=cfg.sweep_interval_seconds, metrics=runtime.metrics
        )
        learning: InProcessLearning | None = None
        watcher: ModelWatcher | None = None
        if cfg.learning == "inprocess":
            learning = InProcessLearning(runtime)
            learning.start()
        else:
            watcher = ModelWatcher(
                runtime.store,
                lambda policy, snap: runtime.swap_policy(policy, snap.version),
                poll_seconds=cfg.model_poll_seconds,
                current_version=runtime.policy.version,
            )
            watcher.start()
        sweeper.start()
        logger.info(
            "service started",
            extra={
                "store": cfg.store,
                "policy": runtime.policy.get().name,
                "learning": cfg.learning,
            },
        )
        try:
            yield
        finally:
            sweeper.stop()
            if watcher is not None:
                watcher.stop()
            if learning is not None:
                learning.stop()
            runtime.store.close()
            logger.info("service stopped")

    app = FastAPI(
        title="nbi decision service",
        version=API_VERSION,
        description=(
            "Next-best-intervention recommendations for job centres, with a randomised "
            "control arm. Errors are RFC 9457 problem JSON."
        ),
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(build_router())
    app.add_middleware(BodyGuardMiddleware, max_body_bytes=cfg.max_body_bytes)
    app.add_middleware(TimingMiddleware)
    return app
