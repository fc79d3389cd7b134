"""The FastAPI app factory and its lifespan.

``create_app(settings)`` builds the app; nothing is opened until the lifespan starts: it opens
the store, loads the catalog and the newest policy snapshot (or a fresh policy), builds the
metrics registry, starts the settlement sweep and either in-process learning or the model
watcher (``learning="worker"``), and closes everything on shutdown.

Three ASGI middlewares wrap every request: one times it per route template and status class
(``nbi_http_request_duration_seconds``), then the request guard (:mod:`service.guard`) refuses a
body without a valid API key (401, before reading it), non-JSON (415), over ``max_body_bytes``
(413), with ``NaN``/``Infinity`` (422) or nested too deeply (400) before FastAPI parses it,
then admission control (:mod:`service.admission`) bounds the requests at work and waiting and
answers the excess, and every request while the store is down, with a fast 503.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.admission import AdmissionMiddleware
from service.api import build_router
from service.capacity import CapacityTracker, open_seat_ledger
from service.config import Settings, get_settings
from service.docs import install_docs
from service.errors import install_error_handlers
from service.governance import Governance
from service.guard import RequestGuardMiddleware
from service.learning import InProcessLearning
from service.lifecycle import LifecycleWatcher, start_serving
from service.metrics import ServiceMetrics
from service.model_watcher import PolicyRef
from service.monitor import EquityMonitor
from service.openapi import install_openapi
from service.outage import StoreBreaker, store_probe
from service.persistence import PersistenceCheck
from service.runtime import Runtime, build_catalog, build_experiment, initial_policy
from service.settle import Sweeper
from service.store.factory import make_store

logger = logging.getLogger("nbi.app")

API_VERSION = "1.0.0"


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


def _open_runtime(settings: Settings) -> Runtime:
    store = make_store(settings)
    try:
        catalog = build_catalog(settings)
        store.register_catalog([a.id for a in catalog])  # records index into it (compact)
        policy = initial_policy(settings, store)
        metrics = ServiceMetrics(ips_window=settings.ips_window)
        runtime = Runtime(
            settings=settings,
            store=store,
            catalog=catalog,
            experiment=build_experiment(settings),
            policy=PolicyRef(policy),
            metrics=metrics,
            capacity=CapacityTracker(catalog, open_seat_ledger(settings)),
        )
    except BaseException:
        store.close()
        raise
    try:
        start_serving(runtime)  # the approved version (never an unapproved candidate)
    except BaseException:
        store.close()
        raise
    metrics.control_share_configured.set(settings.control_share)
    serving = runtime.policy.get()
    metrics.set_model(serving.model_version, serving.name, serving.n_updates, time.time())
    metrics.pending.set(store.pending_count())
    return runtime


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the decision service app (resources open in the lifespan).

    Examples
    --------
    >>> app = create_app(Settings(policy="uniform"))
    >>> sorted(p for p in app.openapi()["paths"] if p.startswith("/v1"))[:2]
    ['/v1/citizens/erase', '/v1/decisions/{event_id}/assignment']
    """
    cfg = settings if settings is not None else get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Decisions run on pool threads; with CPython's default 5 ms GIL switch interval they
        # starve the event loop (admission, fast 503s, /metrics) under load.
        sys.setswitchinterval(cfg.gil_switch_interval_seconds)
        runtime = _open_runtime(cfg)
        app.state.runtime = runtime
        app.state.metrics = runtime.metrics
        breaker = StoreBreaker(  # fast 503s while the store is unreachable
            store_probe(runtime.store),
            retry_after=cfg.store_retry_after_seconds,
            probe_interval=min(0.5, cfg.store_retry_after_seconds),
            gauge=runtime.metrics.store_up,
        )
        app.state.breaker = breaker
        governance = Governance.start(cfg, runtime, app)  # audit trail, erasure, retention
        app.state.persistence = PersistenceCheck(runtime.store, runtime.metrics.store_durable)
        app.state.persistence.current()  # checked (and a warning logged) at start-up
        sweeper = Sweeper(
            runtime.store, interval=cfg.sweep_interval_seconds, metrics=runtime.metrics
        )
        learning: InProcessLearning | None = None
        if cfg.learning == "inprocess":
            learning = InProcessLearning(runtime)
            learning.start()
        # Every replica follows the store's approved version, mode and kill switch.
        watcher = LifecycleWatcher(runtime)
        watcher.start()
        sweeper.start()
        monitor = EquityMonitor(runtime)  # parity and drift gauges (service/monitor.py)
        app.state.monitor = monitor
        monitor.start()
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
            monitor.stop()
            sweeper.stop()
            watcher.stop()
            if learning is not None:
                learning.stop()
            governance.stop()
            breaker.stop()
            runtime.decision_pool.shutdown(wait=True)  # requests have drained before shutdown
            runtime.capacity.close()
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
        docs_url=None,  # served locally by install_docs (the default loads a CDN)
        redoc_url=None,
    )
    install_docs(app)
    install_openapi(app)  # the shared error answers (503, 401, 400/413/415) on every operation
    install_error_handlers(app)
    app.include_router(build_router())
    app.add_middleware(  # innermost: runs once the guard has read and checked the body
        AdmissionMiddleware,
        max_concurrent=cfg.max_concurrent_requests,
        max_queued=cfg.max_queued_requests,
        queue_timeout=cfg.queue_timeout_seconds,
        max_analyses=cfg.max_concurrent_analyses,
    )
    app.add_middleware(
        RequestGuardMiddleware, api_keys=cfg.api_keys, max_body_bytes=cfg.max_body_bytes
    )
    app.add_middleware(TimingMiddleware)
    return app
