"""``POST /v1/citizens/erase`` (admin): erase every record of one citizen (GDPR art. 17)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field

from service.deps import AdminRole, RuntimeDep
from service.erasure import Eraser, erase_citizen
from service.errors import PROBLEM_MEDIA_TYPE

router = APIRouter(prefix="/v1/citizens", tags=["citizens"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (401, "No or invalid API key"),
        (403, "Wrong role (admin only)"),
        (422, "Invalid citizen id or reference"),
    )
}


class ErasureRequest(BaseModel):
    """The citizen to erase, by raw id (pseudonymised at once, never stored or logged)."""

    model_config = ConfigDict(extra="forbid")

    citizen_id: str = Field(min_length=1, max_length=64, description="Raw citizen id (CPR).")
    reference: str | None = Field(
        default=None,
        max_length=64,
        description="Operator's reference for the audit entry (case number; no CPR number).",
    )


class ErasureResponse(BaseModel):
    """What was removed; ``flushed``: the removal is physical (WAL checkpoint / AOF rewrite)."""

    records: int
    protected: int
    request_ids: int
    queue_entries: int
    flushed: bool
    audit_seq: int


@router.post(
    "/erase",
    response_model=ErasureResponse,
    responses=_PROBLEMS,
    operation_id="erase_citizen",
    summary="Erase one citizen's records (role: admin)",
)
def erase(
    body: ErasureRequest, runtime: RuntimeDep, _role: AdminRole, request: Request
) -> ErasureResponse:
    """Remove every record, protected attribute, request id and queue entry of the citizen in
    the store, and audit it (idempotent). A model's aggregate weights are not erased (README)."""
    eraser: Eraser = request.app.state.eraser
    report = erase_citizen(
        body.citizen_id,
        settings=runtime.settings,
        eraser=eraser,
        trail=request.app.state.audit,
        actor=getattr(request.state, "api_key_id", "anonymous"),
        role=getattr(request.state, "role", "admin"),
        reference=body.reference,
    )
    return ErasureResponse(**report.to_dict())
