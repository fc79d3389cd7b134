"""Typed citizen context (model features) and protected attributes (audit only).

Protected attributes are a separate type: they are stored apart and never become model
features unless a policy is explicitly configured with ``protected_as_features``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bandit.errors import InvalidContextError, SensitiveDataError
from bandit.privacy import reject_cpr_like_tokens
from bandit.types import FeatureValue

MAX_CV_TOKENS = 50
MAX_TOKEN_LENGTH = 64
MAX_PRIOR_SPELLS = 5
"""Cap of the ``prior_spells`` feature (more earlier spells add nothing the model can use)."""
MAX_WEEKS_SINCE_LAST_SPELL = 156
"""Cap of the ``weeks_since_last_spell`` feature (three years, as ``benefit_history_weeks``)."""
NO_FAMILY = "none"
"""``last_family`` of a citizen whose earlier spell has no recorded assignment."""


class TargetGroup(StrEnum):
    """Benefit scheme of the spell."""

    DAGPENGE = "dagpenge"
    KONTANTHJAELP = "kontanthjaelp"


class Education(StrEnum):
    """Highest completed education (ISCED-like bands)."""

    LOWER_SECONDARY = "lower_secondary"
    UPPER_SECONDARY = "upper_secondary"
    VOCATIONAL = "vocational"
    SHORT_HIGHER = "short_higher"
    BACHELOR = "bachelor"
    MASTER = "master"


class DanishProficiency(StrEnum):
    """Danish language proficiency."""

    NATIVE = "native"
    GOOD = "good"
    BASIC = "basic"
    NONE = "none"


class Sector(StrEnum):
    """Sector of the last job (or of the CV occupation)."""

    CONSTRUCTION = "construction"
    MANUFACTURING = "manufacturing"
    RETAIL = "retail"
    HOSPITALITY = "hospitality"
    TRANSPORT = "transport"
    HEALTH_CARE = "health_care"
    EDUCATION = "education"
    IT = "it"
    FINANCE = "finance"
    PUBLIC_ADMIN = "public_admin"
    CULTURE = "culture"
    CLEANING = "cleaning"
    NONE = "none"


class Gender(StrEnum):
    """Gender (protected, audit only)."""

    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


class Origin(StrEnum):
    """Origin in Statistics Denmark's three groups (protected, audit only)."""

    DANISH = "danish"
    WESTERN = "western"
    NON_WESTERN = "non_western"


_Token = Annotated[str, Field(min_length=1, max_length=MAX_TOKEN_LENGTH)]


class CitizenContext(BaseModel):
    """The citizen's situation at the decision: the only model inputs.

    Examples
    --------
    >>> c = CitizenContext(target_group="dagpenge", age=34, education="bachelor",
    ...                    weeks_unemployed=3, last_sector="it", cv_tokens=("python",))
    >>> c.features()["target_group"], c.features()["weeks_unemployed"]
    ('dagpenge', 3)
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_enum_values=False)

    target_group: TargetGroup
    age: int = Field(ge=16, le=70, strict=True, description="Age in years")
    education: Education
    weeks_unemployed: int = Field(
        ge=0, le=520, strict=True, description="Weeks in the current spell"
    )
    benefit_history_weeks: int = Field(
        default=0,
        ge=0,
        le=156,
        strict=True,
        description="Weeks on benefits in the 3 years before the spell",
    )
    last_sector: Sector = Sector.NONE
    danish_proficiency: DanishProficiency = DanishProficiency.NATIVE
    health_limitation: bool = Field(default=False, strict=True)
    single_parent: bool = Field(default=False, strict=True)
    labour_demand_index: float = Field(
        default=1.0,
        ge=0.0,
        le=5.0,
        allow_inf_nan=False,
        strict=True,
        description="Vacancies per unemployed in the CV occupation, local area",
    )
    cv_tokens: tuple[_Token, ...] = Field(default=(), max_length=MAX_CV_TOKENS)
    # Spell history as the case system knows it (optional). When any of the three is sent, the
    # case system's history is used as sent; otherwise the service derives it from its own
    # records of the pseudonym (bandit/history.py). Not protected attributes: case facts.
    prior_spells: int | None = Field(
        default=None,
        ge=0,
        le=520,
        strict=True,
        description="Earlier unemployment spells of the citizen (capped at "
        f"{MAX_PRIOR_SPELLS} as a feature); omit to let the service derive it",
    )
    weeks_since_last_spell: int | None = Field(
        default=None,
        ge=0,
        le=520,
        strict=True,
        description="Weeks from the previous spell to the start of this one (capped at "
        f"{MAX_WEEKS_SINCE_LAST_SPELL} as a feature)",
    )
    last_family: Annotated[str, Field(max_length=32, pattern=r"^[a-z_]+$")] | None = Field(
        default=None,
        description="Intervention family assigned in the previous spell, or `none`",
    )

    @field_validator("last_family")
    @classmethod
    def _known_family(cls, family: str | None) -> str | None:
        from bandit.catalog import Family  # noqa: PLC0415 (bandit.catalog imports this module)

        if family is not None and family != NO_FAMILY and family not in {f.value for f in Family}:
            msg = f"Expected a catalog family or `{NO_FAMILY}`"
            raise ValueError(msg)
        return family

    @field_validator("cv_tokens")
    @classmethod
    def _no_identifiers(cls, tokens: tuple[str, ...]) -> tuple[str, ...]:
        reject_cpr_like_tokens("cv_tokens", tokens)
        return tokens

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CitizenContext:
        """Validate a plain mapping; raise :class:`InvalidContextError` with precise messages."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            for err in exc.errors():
                cause = (err.get("ctx") or {}).get("error")
                if isinstance(cause, SensitiveDataError):
                    raise SensitiveDataError(str(cause)) from None
            raise InvalidContextError(_format_errors(exc)) from None

    def features(self) -> dict[str, FeatureValue]:
        """Model features as a flat mapping (CV tokens as ``cv_<token>`` indicator features)."""
        out: dict[str, FeatureValue] = {
            "target_group": self.target_group.value,
            "age": self.age,
            "education": self.education.value,
            "weeks_unemployed": self.weeks_unemployed,
            "benefit_history_weeks": self.benefit_history_weeks,
            "last_sector": self.last_sector.value,
            "danish_proficiency": self.danish_proficiency.value,
            "health_limitation": self.health_limitation,
            "single_parent": self.single_parent,
            "labour_demand_index": self.labour_demand_index,
        }
        for token in self.cv_tokens:
            out[f"cv_{token.lower()}"] = 1.0
        if self.prior_spells is not None:
            out["prior_spells"] = min(self.prior_spells, MAX_PRIOR_SPELLS)
        if self.weeks_since_last_spell is not None:
            out["weeks_since_last_spell"] = min(
                self.weeks_since_last_spell, MAX_WEEKS_SINCE_LAST_SPELL
            )
        if self.last_family is not None:
            out["last_family"] = self.last_family
        return out

    @property
    def no_upper_secondary(self) -> bool:
        """True when the citizen has no education beyond lower secondary."""
        return self.education is Education.LOWER_SECONDARY


class ProtectedAttributes(BaseModel):
    """Protected attributes, accepted for fairness audits only; never model features by default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    gender: Gender | None = None
    origin: Origin | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ProtectedAttributes:
        """Validate a plain mapping; raise :class:`InvalidContextError` with precise messages."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise InvalidContextError(_format_errors(exc)) from None

    def as_features(self) -> dict[str, FeatureValue]:
        """The attributes as features, for policies explicitly configured to use them."""
        return {
            f"protected_{k}": v.value
            for k, v in (("gender", self.gender), ("origin", self.origin))
            if v is not None
        }


def age_band(age: int) -> str:
    """Age band used in audits: ``"16-29"``, ``"30-49"`` or ``"50+"``."""
    if age < 30:  # noqa: PLR2004
        return "16-29"
    if age < 50:  # noqa: PLR2004
        return "30-49"
    return "50+"


def _format_errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "context"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
