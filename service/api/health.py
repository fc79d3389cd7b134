"""``GET /healthz``, ``GET /readyz`` and ``GET /metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST

from service.auth import authorize
from service.deps import RuntimeDep
from service.errors import ApiProblem
from service.persistence import PersistenceCheck
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
    checks = {
        "store": runtime.store.ping(),
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
    _durable(request)  # refreshes nbi_store_durable (at most every 30 s)
    runtime.metrics.pending.set(runtime.store.pending_count())
    runtime.metrics.learner_lag.set(runtime.store.learning_lag())
    return Response(runtime.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _durable(request: Request) -> bool:
    check: PersistenceCheck | None = getattr(request.app.state, "persistence", None)
    found = None if check is None else check.current()
    return found is not None and found.durable
