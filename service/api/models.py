"""``GET /v1/models`` and ``POST /v1/models/reload`` (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from bandit.policies import policy_from_bytes
from service.deps import AdminRole, ModelReaderRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import ModelInfo, ReloadResponse

router = APIRouter(prefix="/v1/models", tags=["models"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in ((401, "No or invalid API key"), (403, "Wrong role"))
}


@router.get("", response_model=ModelInfo, responses=_PROBLEMS)
def model_info(runtime: RuntimeDep, _role: ModelReaderRole) -> ModelInfo:
    """The policy serving this replica and the newest stored snapshot."""
    policy = runtime.policy.get()
    latest = runtime.store.latest_model()
    return ModelInfo(
        policy=policy.name,
        model_version=runtime.policy.version or policy.model_version,
        updates=policy.n_updates,
        learning=runtime.settings.learning,
        latest_snapshot=None if latest is None else latest.version,
        floor=policy.floor,
        catalog_size=len(runtime.catalog),
    )


@router.post("/reload", response_model=ReloadResponse, responses=_PROBLEMS)
def reload_model(runtime: RuntimeDep, _role: AdminRole) -> ReloadResponse:
    """Serve the newest stored snapshot now (no-op when it is already serving or none exists)."""
    latest = runtime.store.latest_model()
    current = runtime.policy.version
    if latest is None or latest.version == current:
        return ReloadResponse(
            reloaded=False, model_version=current or runtime.policy.get().model_version
        )
    runtime.swap_policy(policy_from_bytes(latest.data), latest.version)
    return ReloadResponse(reloaded=True, model_version=latest.version)
