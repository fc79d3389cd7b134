"""``GET /v1/experiment/summary`` (researcher role)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.deps import ResearcherRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import ExperimentSummary
from service.summary import experiment_summary

router = APIRouter(prefix="/v1/experiment", tags=["experiment"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in ((401, "No or invalid API key"), (403, "Wrong role"))
}


@router.get("/summary", response_model=ExperimentSummary, responses=_PROBLEMS)
def summary(runtime: RuntimeDep, _role: ResearcherRole) -> ExperimentSummary:
    """Treatment vs control counts and employment rates so far, with 95 % intervals."""
    return experiment_summary(
        runtime.store.group_counts(), runtime.experiment, runtime.settings.horizon_weeks
    )
