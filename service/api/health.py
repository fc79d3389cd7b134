"""``GET /healthz``, ``GET /readyz`` and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from service.auth import authorize
from service.deps import RuntimeDep
from service.errors import ApiProblem
from service.outage import is_store_outage
from service.persistence import PersistenceCheck
from service.runtime import Runtime
from service.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: the process answers."""
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses={503: {"description": "Not ready"}})
def readyz(request: Request, runtime: RuntimeDep) -> Health:
    """Readiness: the store answers, a policy is loaded and (in ``prod``) the store is durable
    (Redis with AOF and ``appendfsync always``; reported in every environment)."""
    breaker = getattr(request.app.state, "breaker", None)
    if breaker is None:
        store_up = runtime.store.ping()
    else:  # one quick unretried ping, never 5 s of client retries
        store_up = not breaker.is_open() and breaker.probe()
        if not store_up:
            breaker.trip()
    checks = {
        "store": store_up,
        "policy": runtime.policy.get() is not None,
        "persistence": _durable(request),
    }
    required = [k for k in checks if k != "persistence" or runtime.settings.environment == "prod"]
    if not all(checks[k] for k in required):
        failed = ", ".join(k for k in required if not checks[k])
        raise ApiProblem(
            status.HTTP_503_SERVICE_UNAVAILABLE, "unavailable", "Not ready", f"Failing: {failed}"
        )
    return Health(status="ok", checks=checks)


@router.get("/metrics", response_class=Response, include_in_schema=False)
def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus exposition (``metrics`` role unless ``metrics_public``)."""
    if not runtime.settings.metrics_public:
        authorize(request, runtime.settings.api_keys, ("metrics",))
    _refresh_store_gauges(request, runtime)
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _durable(request: Request) -> bool:
    check: PersistenceCheck | None = getattr(request.app.state, "persistence", None)
    found = None if check is None else check.current()
    return found is not None and found.durable


def _refresh_store_gauges(request: Request, runtime: Runtime) -> None:
    """Refresh the gauges read from the store; during an outage keep their last values, so
    ``/metrics`` answers at once (ops need it most then) and ``nbi_store_up`` says why."""
    breaker = getattr(request.app.state, "breaker", None)
    if breaker is not None and (breaker.is_open() or not breaker.probe()):
        breaker.trip()  # a quick unretried ping first: a scrape never waits out retries
        return
    try:
        _durable(request)  # refreshes nbi_store_durable (at most every 30 s)
        runtime.metrics.pending.set(runtime.store.pending_count())
        runtime.metrics.learner_lag.set(runtime.store.learning_lag())
    except Exception as exc:
        if not is_store_outage(exc):
            raise
        if breaker is not None:
            breaker.trip()
