"""``POST /v1/decisions/{event_id}/assignment``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from bandit.engine import actions_by_id
from bandit.errors import InvalidInputError, UnknownActionError
from service.assignment_checks import assignment_warnings
from service.audit import audit_request
from service.deps import CaseRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import AssignmentRequest, AssignmentResponse

router = APIRouter(prefix="/v1/decisions", tags=["decisions"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (400, "The body cannot be read (not UTF-8)"),
        (401, "No or invalid API key"),
        (403, "Wrong role"),
        (404, "Unknown event"),
        (409, "A different assignment is already stored"),
        (422, "Unknown action or missing reason code"),
    )
}
EventIdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@router.post(
    "/{event_id}/assignment",
    response_model=AssignmentResponse,
    responses=_PROBLEMS,
    operation_id="record_assignment",
)
def record_assignment(
    event_id: EventIdPath,
    body: AssignmentRequest,
    runtime: RuntimeDep,
    _role: CaseRole,
    request: Request,
) -> AssignmentResponse:
    """Record what the caseworker assigned; a reason code is required when it differs.

    An assignment beyond the offer's seats this capacity week, or to an offer the citizen was
    not legally eligible for, is stored and comes back with ``warnings``. Role: case.
    Audited.
    """
    record = runtime.store.get_decision(event_id)
    assigned = body.assigned_action_id
    if assigned not in actions_by_id(runtime.catalog):  # the detail never echoes the id
        msg = "assigned_action_id is not in the catalog"
        raise UnknownActionError(msg)
    # shadow and practice records showed no suggestion: nothing to explain a deviation from
    shown = record.recommended if record.mode == "live" else None
    differs = shown is not None and assigned != shown
    if differs and body.reason_code is None:
        msg = "reason_code is required when the assignment differs from the recommendation"
        raise InvalidInputError(msg)
    reason = None if body.reason_code is None else body.reason_code.value
    result = runtime.store.record_assignment(event_id, assigned, reason)
    stored = result.record
    assert stored.assigned is not None  # noqa: S101 (just stored)
    # accepted in any case (the caseworker decides); over capacity or ineligible is flagged
    warnings = assignment_warnings(runtime, stored, stored.assigned, new=result.changed)
    audit_request(request, "assignment", event_id, {"changed": result.changed})
    return AssignmentResponse(
        event_id=event_id,
        assigned_action_id=stored.assigned,
        reason_code=stored.assignment_reason,
        complied=stored.complied,
        changed=result.changed,
        warnings=warnings,
    )
