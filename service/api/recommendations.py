"""``POST /v1/recommendations``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Response

from bandit.errors import InvalidInputError
from service.blocking import run_blocking
from service.decide import recommend
from service.deps import CaseRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import RecommendationRequest, RecommendationResponse

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (400, "The body cannot be read (not UTF-8)"),
        (401, "No or invalid API key"),
        (403, "Wrong role"),
        (409, "Request id reused for another citizen"),
        (413, "Body too large"),
        (422, "Invalid request, CPR-like feature or nothing eligible"),
    )
}
_LINKS: dict[int | str, dict[str, Any]] = {
    "200": {
        "description": "The decision",
        "links": {
            "RecordAssignment": {
                "operationId": "record_assignment",
                "parameters": {"event_id": "$response.body#/event_id"},
            },
            "ReportOutcome": {
                "operationId": "report_outcome",
                "requestBody": {"event_id": "$response.body#/event_id"},
            },
        },
    }
}


@router.post(
    "",
    response_model=RecommendationResponse,
    responses={**_PROBLEMS, **_LINKS},
    operation_id="create_recommendation",
)
async def create_recommendation(
    body: RecommendationRequest,
    runtime: RuntimeDep,
    _role: CaseRole,
    idempotency_key: Annotated[str | None, Header(max_length=128)] = None,
) -> Response:
    """Recommend the next-best intervention (control group: no recommendation).

    Idempotent on ``Idempotency-Key`` (or ``request_id``): a repeat returns the first answer.
    Both may be sent only when they are equal (422 otherwise: a retry carrying one of them
    must find the same decision). Role: case (the case system).
    """
    if idempotency_key is not None and body.request_id not in (None, idempotency_key):
        msg = (
            "The Idempotency-Key header and the body's request_id differ: send one idempotency "
            "key, or the same key in both"
        )
        raise InvalidInputError(msg)
    # The decision blocks (model, store), so it runs on the decision threads (one per admission
    # slot, service/blocking.py); the handler itself is async so that FastAPI checks and
    # serialises the response on the event loop instead of handing off a second time.
    answer = await run_blocking(
        runtime.decision_pool,
        recommend,
        runtime,
        body,
        request_id=idempotency_key or body.request_id,
    )
    # Built and validated by the use case already: serialised once by pydantic-core, not
    # validated and encoded again by FastAPI (response_model still documents it).
    return Response(answer.model_dump_json(), media_type="application/json")
