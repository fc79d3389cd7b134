"""The decision record: one durable record per request, control group included.

Written by the service (both stores), by the simulator's logs and read by ``offline_eval``.
Protected attributes are *not* part of the record; they are stored apart, keyed by event id.
Records are immutable; the assignment and the outcome are added with :meth:`with_assignment`
and :meth:`with_outcome`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bandit.control import Group
from bandit.errors import InvalidInputError
from bandit.rewards import Outcome
from bandit.types import FeatureValue


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """Everything needed for learning, off-policy evaluation and the RCT analysis.

    Parameters
    ----------
    event_id
        Unique id of the decision event.
    timestamp
        Unix time (seconds) of the decision.
    citizen_key
        Pseudonym of the citizen (never the raw id).
    group
        RCT arm.
    context
        Model features used.
    eligible
        Eligible action ids in pmf order (after the legal and capacity filter).
    pmf
        Probability of each eligible action; empty for the control group.
    recommended
        Sampled action id; ``None`` for control.
    propensity
        ``pmf`` of ``recommended``; ``None`` for control.
    model_version, policy
        Which model and policy produced the pmf.
    experiment
        Fingerprint of the experiment config (control share, salt id, start date).
    cluster_key
        Pseudonym of the randomisation cluster (caseworker or job centre) when the control arm
        is assigned by cluster; ``None`` for per-citizen randomisation.
    caseworker_key, jobcentre_key
        Pseudonyms of the caseworker and the job centre of the request when it named them
        (:func:`bandit.privacy.pseudonymise_cluster`, whatever the randomisation unit), for the
        human-oversight monitor (override rates); ``None`` when not sent (and in records written
        before these fields existed).
    excluded
        Why each non-eligible action was filtered out (action id -> reason).
    assigned, assignment_reason
        What the caseworker actually assigned, and the reason code when it differs.
    outcome
        Employment outcome once known.
    reward
        Reward once settled; ``None`` while pending or when censored.
    censored
        True when the outcome is censored (dropout before the horizon).
    """

    event_id: str
    timestamp: float
    citizen_key: str
    group: Group
    context: Mapping[str, FeatureValue]
    eligible: tuple[str, ...]
    pmf: tuple[float, ...]
    recommended: str | None
    propensity: float | None
    model_version: str
    policy: str
    experiment: str = ""
    cluster_key: str | None = None
    excluded: Mapping[str, str] = field(default_factory=dict)
    assigned: str | None = None
    assignment_reason: str | None = None
    outcome: Outcome | None = None
    reward: float | None = None
    censored: bool = False
    mode: str = "live"
    """How the decision was served (``service/lifecycle.py``): ``live`` (the suggestion was
    shown), ``shadow`` (the policy decided and its pmf is logged, nothing was shown) or
    ``practice`` (kill switch: practice as usual, the policy was not asked; empty pmf)."""
    caseworker_key: str | None = None
    jobcentre_key: str | None = None

    @property
    def complied(self) -> bool | None:
        """Whether the caseworker followed the recommendation (``None`` if unknown/control)."""
        if self.recommended is None or self.assigned is None:
            return None
        return self.assigned == self.recommended

    @property
    def settled(self) -> bool:
        """True once an outcome is recorded."""
        return self.outcome is not None

    def with_assignment(self, assigned: str, reason: str | None) -> DecisionRecord:
        """A copy with the caseworker's assignment."""
        return dataclasses.replace(self, assigned=assigned, assignment_reason=reason)

    def with_outcome(
        self, outcome: Outcome, reward: float | None, *, censored: bool
    ) -> DecisionRecord:
        """A copy with the settled outcome and reward."""
        return dataclasses.replace(self, outcome=outcome, reward=reward, censored=censored)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (enums as strings, tuples as lists), keys in field order.

        Written out field by field rather than by reflection: stores serialise one record per
        decision, and this runs on every request.
        """
        group, outcome = self.group, self.outcome
        return {
            "event_id": self.event_id,
            "timestamp": self.timestamp,
            "citizen_key": self.citizen_key,
            "group": group.value if isinstance(group, Group) else group,
            "context": dict(self.context),
            "eligible": list(self.eligible),
            "pmf": list(self.pmf),
            "recommended": self.recommended,
            "propensity": self.propensity,
            "model_version": self.model_version,
            "policy": self.policy,
            "experiment": self.experiment,
            "cluster_key": self.cluster_key,
            "excluded": dict(self.excluded),
            "assigned": self.assigned,
            "assignment_reason": self.assignment_reason,
            "outcome": None if outcome is None else outcome.to_dict(),
            "reward": self.reward,
            "censored": self.censored,
            "mode": self.mode,
            "caseworker_key": self.caseworker_key,
            "jobcentre_key": self.jobcentre_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DecisionRecord:
        """Inverse of :meth:`to_dict`; raise :class:`InvalidInputError` if malformed."""
        try:
            outcome_data = data.get("outcome")
            outcome = None if outcome_data is None else Outcome.from_dict(outcome_data)
            record = cls(
                event_id=str(data["event_id"]),
                timestamp=float(data["timestamp"]),
                citizen_key=str(data["citizen_key"]),
                group=Group(data["group"]),
                context=dict(data["context"]),
                eligible=tuple(data["eligible"]),
                pmf=tuple(float(p) for p in data["pmf"]),
                recommended=data.get("recommended"),
                propensity=None if data.get("propensity") is None else float(data["propensity"]),
                model_version=str(data["model_version"]),
                policy=str(data["policy"]),
                experiment=str(data.get("experiment", "")),
                cluster_key=None if data.get("cluster_key") is None else str(data["cluster_key"]),
                excluded=dict(data.get("excluded") or {}),
                assigned=data.get("assigned"),
                assignment_reason=data.get("assignment_reason"),
                outcome=outcome,
                reward=None if data.get("reward") is None else float(data["reward"]),
                censored=bool(data.get("censored", False)),
                mode=str(data.get("mode", "live")),
                caseworker_key=_optional_text(data.get("caseworker_key")),
                jobcentre_key=_optional_text(data.get("jobcentre_key")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"Malformed decision record: {exc}"
            raise InvalidInputError(msg) from None
        pmf_ok = len(record.pmf) == len(record.eligible) and math.isclose(
            sum(record.pmf), 1.0, abs_tol=1e-6
        )
        if record.group is Group.TREATMENT and record.mode != "practice" and not pmf_ok:
            msg = "Malformed decision record: pmf must match eligible and sum to 1"
            raise InvalidInputError(msg)
        return record


def _optional_text(value: object) -> str | None:
    return None if value is None else str(value)
