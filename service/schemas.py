"""Request and response models of the HTTP API (``/v1``).

Requests forbid unknown fields and non-finite numbers; free strings are length-bounded.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from bandit.context import CitizenContext, ProtectedAttributes
from bandit.rewards import OutcomeStatus

ActionId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
EventId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
RequestId = Annotated[str, Field(min_length=1, max_length=128)]
ClusterId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Weeks = Annotated[float, Field(ge=0.0, le=520.0, allow_inf_nan=False, strict=True)]
Ratio = Annotated[float, Field(ge=0.0, le=1.0)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class ReasonCode(StrEnum):
    """Why the caseworker assigned something other than the recommendation."""

    CITIZEN_PREFERENCE = "citizen_preference"
    CASEWORKER_JUDGEMENT = "caseworker_judgement"
    CAPACITY = "capacity"
    HEALTH = "health"
    ALREADY_ENROLLED = "already_enrolled"
    OTHER = "other"


# ----------------------------------------------------------------------------- recommendations


class RecommendationRequest(_Request):
    """Ask for the next-best intervention for one citizen."""

    citizen_id: str = Field(
        min_length=1,
        max_length=64,
        description="Raw citizen id (e.g. CPR); pseudonymised at once and never stored.",
    )
    context: CitizenContext
    protected: ProtectedAttributes | None = Field(
        default=None, description="Protected attributes for fairness audits only."
    )
    caseworker_id: ClusterId | None = Field(
        default=None,
        description="Caseworker id; required when the RCT randomises by caseworker. "
        "Pseudonymised at once.",
    )
    jobcentre_id: ClusterId | None = Field(
        default=None,
        description="Job-centre id; required when the RCT randomises by job centre. "
        "Pseudonymised at once.",
    )
    eligible_action_ids: list[ActionId] | None = Field(
        default=None,
        max_length=1000,
        description="The case system's own shortlist; default: every legally eligible offer.",
    )
    request_id: RequestId | None = Field(
        default=None, description="Idempotency key (or send the Idempotency-Key header)."
    )
    max_options: int = Field(
        default=4, ge=1, le=20, strict=True, description="Ranked options returned."
    )


class OptionOut(BaseModel):
    """One ranked option with the expected 26-week employment chance."""

    rank: int
    action_id: str
    name: str
    family: str
    probability: Ratio = Field(description="Probability the policy gave this option.")
    expected_employment: Ratio = Field(description="Expected chance of a job within the horizon.")
    ci_low: Ratio
    ci_high: Ratio
    observations: int = Field(description="Rewards the model has learned for this option.")
    lock_in_weeks: float = Field(description="Job-search weeks the programme is expected to cost.")
    benefit_days_saved: float | None = Field(
        default=None,
        description="Expected benefit days within the horizon saved versus standard contact "
        "(no programme), from the employment chance under a constant hazard (docs/cost_benefit.md).",
    )
    benefit_days_saved_low: float | None = Field(
        default=None, description="95 % interval of benefit_days_saved (from ci_low)."
    )
    benefit_days_saved_high: float | None = Field(
        default=None, description="95 % interval of benefit_days_saved (from ci_high)."
    )
    programme_cost_dkk: float | None = Field(
        default=None, description="The offer's programme cost per participant in DKK."
    )
    net_value_dkk: float | None = Field(
        default=None,
        description="benefit_days_saved x the target group's benefit per day - programme_cost_dkk.",
    )
    net_value_dkk_low: float | None = Field(
        default=None, description="95 % interval of net_value_dkk (from ci_low)."
    )
    net_value_dkk_high: float | None = Field(
        default=None, description="95 % interval of net_value_dkk (from ci_high)."
    )
    drivers: list[str] = Field(description="Main reasons in case terms (never protected traits).")
    explanation: str


class RecommendationResponse(BaseModel):
    """The decision: the RCT group, and for treatment the ranked options and the recommendation."""

    event_id: str
    group: Literal["treatment", "control"]
    replayed: bool = Field(description="True when this answers a repeated request id.")
    recommendation: OptionOut | None
    options: list[OptionOut]
    eligible_count: int
    model_version: str
    policy: str
    horizon_weeks: int
    explanation: str


# ----------------------------------------------------------------------------- assignments


class AssignmentRequest(_Request):
    """What the caseworker actually assigned."""

    assigned_action_id: ActionId
    reason_code: ReasonCode | None = Field(
        default=None, description="Required when the assignment differs from the recommendation."
    )


class AssignmentWarningCode(StrEnum):
    """Why an accepted assignment is flagged (the caseworker decides; the service warns)."""

    OVER_CAPACITY = "over_capacity"
    INELIGIBLE = "ineligible"


class AssignmentWarning(BaseModel):
    """One flag on an accepted assignment (``detail`` never names the offer or the citizen)."""

    code: AssignmentWarningCode
    detail: str


class AssignmentResponse(BaseModel):
    """The stored assignment, with warnings when it is over capacity or not legally eligible."""

    event_id: str
    assigned_action_id: str
    reason_code: str | None
    complied: bool | None
    changed: bool
    warnings: list[AssignmentWarning] = Field(default_factory=list)


# ----------------------------------------------------------------------------- outcomes


class ReportedStatus(StrEnum):
    """The outcomes a client may report (``not_reported`` is the horizon sweep's alone)."""

    EMPLOYED = OutcomeStatus.EMPLOYED.value
    UNEMPLOYED_AT_HORIZON = OutcomeStatus.UNEMPLOYED_AT_HORIZON.value
    DROPOUT = OutcomeStatus.DROPOUT.value


class OutcomeRequest(_Request):
    """The employment outcome of one decision event."""

    event_id: EventId
    status: ReportedStatus
    weeks_to_job: Weeks | None = Field(default=None, description="For `employed`.")
    employed_on: date | None = Field(default=None, description="For `employed`, instead of weeks.")
    weeks_observed: Weeks | None = Field(default=None, description="For `dropout`.")

    @model_validator(mode="after")
    def _check_fields(self) -> OutcomeRequest:
        employed = self.status is ReportedStatus.EMPLOYED
        if employed and (self.weeks_to_job is None) == (self.employed_on is None):
            msg = "`employed` needs exactly one of weeks_to_job or employed_on"
            raise ValueError(msg)
        if not employed and (self.weeks_to_job is not None or self.employed_on is not None):
            msg = "weeks_to_job and employed_on are only allowed for `employed`"
            raise ValueError(msg)
        dropout = self.status is ReportedStatus.DROPOUT
        if dropout != (self.weeks_observed is not None):
            msg = "weeks_observed is required for `dropout` and allowed only there"
            raise ValueError(msg)
        return self


class OutcomeResponse(BaseModel):
    """The settled reward (higher is better) and whether this call changed anything."""

    event_id: str
    status: str
    reward: float | None
    censored: bool
    changed: bool
    detail: str


# ----------------------------------------------------------------------------- experiment


class ArmSummary(BaseModel):
    """Running counters of one RCT arm, and its employment rate over the outcomes known at the
    analysis date (``analysed``: settled, uncensored, decided >= horizon + report lag ago)."""

    decisions: int
    settled: int
    censored: int
    employed: int
    analysed: int
    analysed_employed: int
    pending: int
    employment_rate: float | None
    ci_low: float | None
    ci_high: float | None


class ExperimentSummary(BaseModel):
    """Treatment vs control so far, with 95 % Wilson intervals and a Newcombe difference CI."""

    experiment: str
    control_share: float
    horizon_weeks: int
    report_lag_weeks: float
    analysis_time: float | None
    treatment: ArmSummary
    control: ArmSummary
    difference: float | None
    difference_ci_low: float | None
    difference_ci_high: float | None
    note: str


# ----------------------------------------------------------------------------- models, health


class ModelInfo(BaseModel):
    """The policy serving this replica and the newest stored snapshot."""

    policy: str
    model_version: str
    updates: int
    learning: str
    latest_snapshot: str | None
    floor: float
    catalog_size: int


class ReloadResponse(BaseModel):
    """Result of ``POST /v1/models/reload``."""

    reloaded: bool
    model_version: str


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(default_factory=dict)


# ----------------------------------------------------------------------------- human oversight


class OverrideRow(BaseModel):
    """Assignments after a shown suggestion and how many differ from it (``rate``: null
    without assignments)."""

    key: str = Field(
        description="Short pseudonym (c_ + 12 hex) of the caseworker or job centre, "
        "'unattributed' when the requests named none, or dimension:group."
    )
    assignments: int
    overrides: int
    rate: Ratio | None


class CaseworkerOverrideRow(OverrideRow):
    """One caseworker (pseudonymised: never the raw id)."""

    low_override: bool = Field(
        description="Assessed (enough assignments) and overriding at most the low rate."
    )


class GroupOverrideRow(OverrideRow):
    """One group of a protected or need dimension."""

    dimension: str
    group: str


class OversightOut(BaseModel):
    """Override (non-compliance) rates over the monitoring window (service/oversight.py)."""

    window_days: float
    min_assignments: int
    low_rate: float
    overall: OverrideRow
    caseworkers_assessed: int
    caseworkers_low_override: int
    caseworkers: list[CaseworkerOverrideRow]
    jobcentres: list[OverrideRow]
    groups: list[GroupOverrideRow]


# ----------------------------------------------------------------------------- citizen information


class CitizenSummary(BaseModel):
    """Plain-language information for the citizen about one decision (GDPR art. 13/14, 22)."""

    event_id: str
    lang: Literal["da", "en"]
    decided_on: date
    situation: Literal["suggested", "control", "shadow", "practice"] = Field(
        description="suggested: a suggestion was shown; control: the trial's comparison group; "
        "shadow: computed but not shown; practice: the system was switched off."
    )
    suggestion_shown: bool
    suggested: str | None = Field(description="The suggested offer, when one was shown.")
    case_facts: list[str] = Field(
        description="The main case facts behind the suggestion (never protected attributes)."
    )
    caseworker_decision: str
    assigned: str | None = Field(description="What the caseworker chose, once recorded.")
    human_review: str = Field(description="How to ask for a human review.")
    text: str = Field(description="All of the above as one message.")
    model_version: str | None = Field(
        description="The model that made the suggestion (null when none was shown)."
    )
