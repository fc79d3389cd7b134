"""``GET /v1/experiment/summary`` (researcher role)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter

from service.deps import ResearcherRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import ExperimentSummary
from service.summary import experiment_summary, known_counts

router = APIRouter(prefix="/v1/experiment", tags=["experiment"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in ((401, "No or invalid API key"), (403, "Wrong role"))
}


@router.get("/summary", response_model=ExperimentSummary, responses=_PROBLEMS)
def summary(runtime: RuntimeDep, _role: ResearcherRole) -> ExperimentSummary:
    """Treatment vs control so far in information time, with 95 % intervals.

    Rates and the difference count only outcomes known now: decisions at least horizon +
    report lag weeks old (service/summary.py). Reads every record once (a researcher's call).
    Role: researcher.
    """
    settings = runtime.settings
    now = time.time()
    known = known_counts(
        runtime.store.iter_records(),
        now=now,
        horizon_weeks=settings.horizon_weeks,
        lag_weeks=settings.report_lag_weeks,
        simulated_time=settings.simulated_time,
    )
    return experiment_summary(
        runtime.store.group_counts(),
        runtime.experiment,
        settings.horizon_weeks,
        known=known,
        lag_weeks=settings.report_lag_weeks,
        analysis_time=now,
        simulated_time=settings.simulated_time,
    )
