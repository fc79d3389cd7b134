"""``GET /v1/decisions/{event_id}/citizen-summary`` (case role): what the citizen is told.

Not audited: like the other reads (model info, experiment summary) it changes nothing; the
case system that shows it to the citizen keeps its own access log.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from service.api.decisions import EventIdPath
from service.citizen_info import Lang, citizen_text, ranked_facts
from service.deps import CaseRole, RuntimeDep
from service.errors import PROBLEM_MEDIA_TYPE
from service.schemas import CitizenSummary

router = APIRouter(prefix="/v1/decisions", tags=["citizen information"])
_PROBLEMS: dict[int | str, dict[str, Any]] = {
    code: {"content": {PROBLEM_MEDIA_TYPE: {}}, "description": text}
    for code, text in (
        (401, "No or invalid API key"),
        (403, "Wrong role"),
        (404, "Unknown event"),
        (422, "Unknown language"),
    )
}


@router.get(
    "/{event_id}/citizen-summary",
    response_model=CitizenSummary,
    responses=_PROBLEMS,
    operation_id="citizen_summary",
)
def citizen_summary(
    event_id: EventIdPath,
    runtime: RuntimeDep,
    _role: CaseRole,
    lang: Annotated[Lang, Query(description="da (Danish) or en (English)")] = "da",
) -> CitizenSummary:
    """A plain-language summary of one decision for the citizen, in Danish or English.

    What was suggested (or that nothing was shown: the trial's comparison group, shadow mode,
    the kill switch), the main case facts behind it (never protected attributes), that the
    caseworker decided and what was assigned, and how to ask for a human review
    (``NBI_CITIZEN_REVIEW_CONTACT_DA`` / ``_EN``). Role: case. Not audited (a read).
    """
    record = runtime.store.get_decision(event_id)  # unknown: 404 problem JSON
    policy = runtime.policy.get()
    with runtime.policy_lock:
        facts, ranked = ranked_facts(record, policy, runtime.catalog)
    settings = runtime.settings
    contact = (
        settings.citizen_review_contact_da if lang == "da" else settings.citizen_review_contact_en
    )
    text = citizen_text(record, facts, runtime.catalog, lang, contact, ranked=ranked)
    shown = text.situation == "suggested"
    return CitizenSummary(
        event_id=record.event_id,
        lang=lang,
        decided_on=datetime.fromtimestamp(record.timestamp, tz=UTC).date(),
        situation=text.situation,
        suggestion_shown=shown,
        suggested=text.suggested,
        case_facts=list(text.case_facts),
        caseworker_decision=text.caseworker_decision,
        assigned=text.assigned,
        human_review=text.human_review,
        text=text.text,
        model_version=record.model_version if shown else None,
    )
