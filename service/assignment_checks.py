"""Checks of a caseworker's assignment: seat capacity and legal eligibility.

An assignment is always accepted (the caseworker decides); one beyond the offer's capacity this
capacity week, or to an offer the citizen was not legally eligible for at the decision, comes
back with a warning and counts in ``nbi_assignments_flagged_total{reason}``. Each flag is
counted once per assignment, however often it is retried; a retry gets the same warnings.
"""

from __future__ import annotations

from bandit.catalog import Catalog
from bandit.context import Education, TargetGroup
from bandit.eligibility import RuleFacts, exclusion_reason
from bandit.records import DecisionRecord
from service.runtime import Runtime
from service.schemas import AssignmentWarning, AssignmentWarningCode


def legal_exclusion(catalog: Catalog, record: DecisionRecord, action_id: str) -> str | None:
    """Why ``action_id`` was not legally allowed for the citizen of ``record`` (``None``: it
    was, or the record lacks the facts the rules read).

    Examples
    --------
    >>> from bandit.catalog import default_catalog
    >>> from bandit.control import Group
    >>> cat = default_catalog()
    >>> only_dp = next(i for i in cat if {g.value for g in i.target_groups} == {"dagpenge"})
    >>> ctx = {"target_group": "kontanthjaelp", "age": 30, "education": "vocational",
    ...        "weeks_unemployed": 30, "single_parent": False}
    >>> rec = DecisionRecord("e", 0.0, "k", Group.CONTROL, ctx, (), (), None, None, "", "")
    >>> legal_exclusion(cat, rec, only_dp.id)
    'target_group'
    """
    ctx = record.context
    try:
        facts = RuleFacts(
            TargetGroup(str(ctx["target_group"])),
            int(ctx["age"]),
            Education(str(ctx["education"])),
            int(ctx["weeks_unemployed"]),
            bool(ctx.get("single_parent", False)),
        )
    except (KeyError, ValueError, TypeError):
        return None
    return exclusion_reason(catalog.get(action_id), facts)


def assignment_warnings(
    runtime: Runtime, record: DecisionRecord, action_id: str, *, new: bool
) -> list[AssignmentWarning]:
    """Count the seat of the stored assignment and flag it when over capacity or ineligible.

    ``new``: the assignment was stored by this request (the ineligible flag is counted then;
    the seat ledger knows itself whether the seat was counted before).
    """
    warnings: list[AssignmentWarning] = []
    flagged = runtime.metrics.assignments_flagged
    if runtime.settings.capacity_tracking:
        take = runtime.capacity.take(record.event_id, action_id)
        if take is not None and take.over:
            if take.new:
                flagged.labels("over_capacity").inc()
            warnings.append(
                AssignmentWarning(
                    code=AssignmentWarningCode.OVER_CAPACITY,
                    detail=f"The offer has {take.capacity} seats this capacity week; this is "
                    f"assignment {take.ordinal}",
                )
            )
    reason = legal_exclusion(runtime.catalog, record, action_id)
    if reason is not None:
        if new:
            flagged.labels("ineligible").inc()
        warnings.append(
            AssignmentWarning(
                code=AssignmentWarningCode.INELIGIBLE,
                detail=f"The citizen was not legally eligible for this offer at the decision "
                f"({reason})",
            )
        )
    return warnings
