"""``POST /v1/outcomes``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from service.audit import audit_request
from service.deps import CaseRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import OutcomeRequest, OutcomeResponse
from service.settle import settle_outcome

router = APIRouter(prefix="/v1/outcomes", tags=["outcomes"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (400, "The body cannot be read (not UTF-8)"),
        (401, "No or invalid API key"),
        (403, "Wrong role"),
        (404, "Unknown event"),
        (409, "A different reported outcome is already stored"),
        (
            422,
            "Invalid outcome, or one the clock contradicts (horizon not passed; a job date, "
            "weeks_to_job or weeks_observed later than today)",
        ),
    )
}


@router.post("", response_model=OutcomeResponse, responses=_PROBLEMS, operation_id="report_outcome")
def report_outcome(
    body: OutcomeRequest, runtime: RuntimeDep, _role: CaseRole, request: Request
) -> OutcomeResponse:
    """Report the employment outcome of an event (idempotent; ``changed`` says what happened).

    Role: case. Audited.
    """
    settings = runtime.settings
    response = settle_outcome(
        runtime.store,
        body,
        horizon_weeks=settings.horizon_weeks,
        metrics=runtime.metrics,
        check_clock=not settings.simulated_time,
    )
    audit_request(request, "outcome", body.event_id, {"changed": response.changed})
    return response
