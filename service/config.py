"""Service configuration: one pydantic-settings class, read from ``NBI_*`` environment variables.

A fresh clone needs no configuration: with ``environment="dev"`` (the default) the secrets and
API keys have documented development defaults. Any other environment refuses to start while a
development default is still in place (compare the FastAPI template's
``_enforce_non_default_secrets``).

Nested values (``api_keys``, ``policy_params``) are given as JSON, e.g.
``NBI_API_KEYS='{"case": ["<sha256 hex>"]}'``.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, PositiveFloat, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bandit.catalog import Family

ROLES: tuple[str, ...] = ("case", "researcher", "admin", "metrics")
"""API roles: the case system, researchers, administrators and the metrics scraper."""

DEV_PSEUDONYM_KEY = "dev-pseudonym-key-change-me"  # noqa: S105 (documented dev default)
DEV_EXPERIMENT_SALT = "dev-experiment-salt-change-me"
DEV_API_KEYS: dict[str, str] = {
    "case": "dev-case-key",
    "researcher": "dev-researcher-key",
    "admin": "dev-admin-key",
    "metrics": "dev-metrics-key",
}
"""Development API keys (plain text, documented in the README); only their hashes are config."""


_KEY_ID = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def hash_api_key(key: str) -> str:
    """SHA-256 hex digest of an API key, the form stored in :attr:`Settings.api_keys`.

    Examples
    --------
    >>> hash_api_key("dev-case-key")[:12]
    '8e8c5b5df8c0'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def api_key_id(entry: str) -> str:
    """The id of an :attr:`Settings.api_keys` entry: ``name`` of ``name:<sha256 hex>``, else
    ``k_`` + the hash's first 12 hex digits (never the key; the audit trail's actor).

    Examples
    --------
    >>> api_key_id("jobcentre-aarhus:" + hash_api_key("x")), api_key_id(hash_api_key("x"))[:2]
    ('jobcentre-aarhus', 'k_')
    """
    name, sep, digest = entry.rpartition(":")
    return name if sep else "k_" + digest[:12]


def _dev_api_key_hashes() -> dict[str, list[str]]:
    return {role: [hash_api_key(key)] for role, key in DEV_API_KEYS.items()}


class Settings(BaseSettings):
    """Configuration of one service process (API replica or learner).

    Examples
    --------
    >>> s = Settings(_env_file=None, store="sqlite", sqlite_path="var/test.sqlite3")
    >>> s.store, s.horizon_weeks, s.horizon_seconds
    ('sqlite', 26, 15724800.0)
    >>> Settings(_env_file=None, environment="prod")
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for Settings
    ...
    """

    model_config = SettingsConfigDict(
        env_prefix="NBI_", env_file=None, extra="ignore", validate_default=True
    )

    environment: Literal["dev", "test", "prod"] = "dev"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # -- storage --------------------------------------------------------------------------
    store: Literal["sqlite", "redis"] = "sqlite"
    sqlite_path: Path = Path("var/nbi.sqlite3")
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_prefix: str = "nbi:"

    # -- learning and models --------------------------------------------------------------
    learning: Literal["inprocess", "worker"] = "inprocess"
    model_poll_seconds: float = Field(default=5.0, gt=0)
    model_dir: Path = Path("var/models")
    snapshot_every: int = Field(default=50, ge=1, description="Updates between model snapshots")
    max_deliveries: int = Field(default=5, ge=1, description="Learning attempts before dead-letter")
    policy: str = "vw"
    policy_params: dict[str, Any] = Field(default_factory=dict)
    floor: float = Field(
        default=0.03,
        ge=0.0,
        le=1.0,
        description="Total exploration mass spread over the eligible offers (each >= floor/K)",
    )
    seed: int = 0
    delay_strategy: Literal["hazard", "horizon", "at_once"] = Field(
        default="hazard",
        description="How delayed outcomes reach the learner (bandit/feedback.py)",
    )
    report_lag_weeks: float = Field(
        default=0.0,
        ge=0.0,
        le=52.0,
        description="Weeks an outcome may take to be reported; the hazard learner waits this "
        "long before it counts a week without a reported job as a week without a job",
    )
    model_param_change: Literal["refuse", "restart", "migrate"] = Field(
        default="refuse",
        description="A stored model whose parameters differ from the settings: refuse to start "
        "(default), start a fresh model with the new parameters (restart; the old one stays "
        "stored), or keep its learned state when only exploration parameters differ (migrate: "
        "floor, gamma_scale, epsilon, optimism...; anything else is still refused)",
    )
    model_approval: Literal["manual", "guardrail", "auto"] = Field(
        default="manual",
        description="Which new snapshots serve (service/lifecycle.py): only those an admin "
        "approves (manual; the default outside dev), also those passing the off-policy "
        "guardrail (guardrail), or every one at once (auto; the default when "
        "environment=dev, so a development service learns and shows it at once)",
    )
    model_keep: int = Field(default=20, ge=2, description="Model snapshots kept for rollback")
    guardrail_margin: float = Field(
        default=0.02,
        ge=0.0,
        description="Guardrail: auto-approve when the candidate's lower bound (SNIPS and DR) is "
        "at least the live model's estimate minus this margin",
    )
    change_cap: float = Field(
        default=1.0,
        gt=0.0,
        le=1.0,
        description="Largest change of any action's probability on the reference contexts "
        "that one approval may make (1 = no cap)",
    )
    reference_contexts: int = Field(
        default=200, ge=1, description="Recent decisions whose contexts check the change cap"
    )
    ope_window: int = Field(
        default=500, ge=10, description="Recent logged decisions used by models compare"
    )
    capacity_tracking: bool = Field(
        default=True,
        description="Count assignments against weekly seats; off when the case system sends "
        "only offers with free seats (eligible_action_ids)",
    )

    # -- decisions and the experiment -----------------------------------------------------
    catalog_path: Path | None = None
    control_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    experiment_salt: SecretStr = SecretStr(DEV_EXPERIMENT_SALT)
    experiment_start: date = date(2026, 1, 1)
    experiment_name: str = "nbi-rct"
    control_unit: Literal["citizen", "caseworker", "jobcentre"] = Field(
        default="citizen",
        description="RCT randomisation unit: each citizen, or all citizens of a caseworker or "
        "job centre (requests must then send caseworker_id or jobcentre_id)",
    )
    control_clusters: list[str] = Field(
        default_factory=list,
        description="Roster of the trial's caseworker or job-centre ids (JSON list, fixed at the "
        "start): exactly round(control_share x clusters) in control; empty: a coin per cluster",
    )
    pseudonym_key: SecretStr = SecretStr(DEV_PSEUDONYM_KEY)
    horizon_weeks: int = Field(default=26, ge=1, le=520)
    benefit_dkk_per_day: dict[Literal["dagpenge", "kontanthjaelp"], PositiveFloat] = Field(
        default={"dagpenge": 360.0, "kontanthjaelp": 320.0},
        description="Benefit cost per day by target group in DKK (domain.md: 360 dagpenge, "
        "320 kontanthjaelp), for the benefit days saved and net value shown per option (JSON)",
    )
    simulated_time: bool = Field(
        default=False,
        description="A simulation drives the service with weeks that pass in seconds: outcomes "
        "are not checked against the clock (horizon passed; job or dropout not later than "
        "today). "
        "Development only",
    )
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    ips_window: int = Field(default=500, ge=1, description="Events in the online IPS estimate")
    retention_months: int | None = Field(
        default=None,
        ge=1,
        le=1200,
        description="Erase decision records (and their protected attributes, request ids and "
        "queue entries) older than this many months, on a schedule (service/retention.py); "
        "unset: keep",
    )
    retention_interval_seconds: float = Field(default=3600.0, gt=0)

    # -- parity and drift monitoring (service/monitor.py) ---------------------------------
    monitor_interval_seconds: float = Field(
        default=3600.0, gt=0, description="Seconds between runs of the parity and drift monitor"
    )
    monitor_window_days: float = Field(
        default=30.0,
        gt=0,
        description="Monitoring window (days); drift compares it to the one before",
    )
    monitor_min_group_size: int = Field(
        default=200,
        ge=1,
        description="Decisions a group (or window) needs before its rate enters a parity ratio, "
        "a calibration error or a PSI (else NaN: no alert)",
    )
    monitor_max_records: int = Field(default=50_000, ge=1, description="Records used per window")
    monitor_scarce_families: list[Family] = Field(
        default=[Family.PRIVATE_WAGE_SUBSIDY, Family.PRIVATE_INTERNSHIP],
        description="Families whose recommendation and receipt parity is monitored (JSON list)",
    )
    # -- equity in the allocation of scarce seats (bandit/equity.py) ------------------------
    equity_reserve_share: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Share of each scarce family's weekly seats held for priority citizens "
        "(the highest need): anyone else sees the family as full once its free seats are down "
        "to it; 0 = no reserve. 0.25 (default) kept the highest-need quartile's effect at "
        "least as large in the simulator (bench/bench_equity.py, docs/decisions.md issue 13 "
        "item 1). Acts only with capacity_tracking",
    )
    equity_priority_share: float = Field(
        default=0.25,
        ge=0.0,
        le=1.0,
        description="Priority citizens: those whose need score (the model's expected employment "
        "under standard contact) is among the lowest this share of recent decisions",
    )
    equity_window: int = Field(
        default=2000, ge=1, description="Recent need scores the priority quantile is taken over"
    )
    equity_scarce_families: list[Family] = Field(
        default=[Family.PRIVATE_WAGE_SUBSIDY, Family.PRIVATE_INTERNSHIP],
        description="Families whose seats the reserve applies to (JSON list)",
    )
    drift_bins: int = Field(default=10, ge=2, le=50, description="Quantile bins of numeric PSI")
    oversight_min_assignments: int = Field(
        default=50,
        ge=1,
        description="Assignments after a shown suggestion a caseworker needs in the monitoring "
        "window before their override rate is assessed (service/oversight.py)",
    )
    oversight_low_override_rate: float = Field(
        default=0.02,
        ge=0.0,
        lt=1.0,
        description="An assessed caseworker overriding at most this share of suggestions is "
        "counted in nbi_oversight_caseworkers_low_override (possible rubber-stamping)",
    )
    oversight_max_jobcentres: int = Field(
        default=200, ge=1, description="Job-centre label values of the oversight metrics"
    )
    citizen_review_contact_da: str = Field(
        default="Kontakt dit jobcenter, hvis du vil have din sag vurderet af en medarbejder, "
        "eller hvis du vil klage over afgørelsen.",
        min_length=1,
        max_length=500,
        description="How a citizen asks for human review, Danish (citizen summary)",
    )
    citizen_review_contact_en: str = Field(
        default="Contact your job centre if you want a member of staff to review your case or "
        "want to complain about the decision.",
        min_length=1,
        max_length=500,
        description="How a citizen asks for human review, English (citizen summary)",
    )

    # -- HTTP -----------------------------------------------------------------------------
    api_keys: dict[str, list[str]] = Field(default_factory=_dev_api_key_hashes)
    max_body_bytes: int = Field(default=65_536, ge=1_024)
    max_header_bytes: int = Field(
        default=16_384,
        ge=1_024,
        description="Largest request line plus headers; more is refused with 431",
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Time from connecting (or the start of a request) to its last header; "
        "a slower head is answered 408 and the connection closed",
    )
    body_timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Time from the last header to the last body byte; slower: 408, closed",
    )
    max_concurrent_requests: int = Field(
        default=2,
        ge=1,
        le=64,
        description="API requests processed at once per worker process (admission control); "
        "more wait in a bounded queue",
    )
    decision_threads: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Threads per worker process that run recommendations; 0 = one per "
        "admission slot (max_concurrent_requests). Admitted requests beyond them wait for a "
        "thread: on 2 cores, 2 threads served 5-12 % more than 16 (GIL contention)",
    )
    max_concurrent_analyses: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Model analyses (GET /v1/models/compare, /{version}/importance, /card) at "
        "work at once per worker process, in slots of their own (never the decisions'); "
        "another is answered 503 analysis_busy at once",
    )
    max_queued_requests: int = Field(
        default=32,
        ge=0,
        le=10_000,
        description="API requests that may wait for admission per worker; more are answered "
        "503 with Retry-After at once",
    )
    queue_timeout_seconds: float = Field(
        default=0.03,
        gt=0,
        le=30,
        description="Longest wait for admission (the request deadline before processing "
        "begins); a request that waited longer is answered 503 without any work",
    )
    gil_switch_interval_seconds: float = Field(
        default=0.001,
        gt=0,
        le=0.1,
        description="CPython's thread switch interval in each API process (default 5 ms); "
        "1 ms keeps the event loop responsive while pool threads compute decisions",
    )
    store_retry_after_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="Retry-After of the 503s answered while the store is unreachable; the "
        "store is probed this often (at most every 0.5 s) until it answers",
    )
    idempotency_ttl_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="Lifetime of an Idempotency-Key / request_id in either store (0 = forever)",
    )
    metrics_public: bool = False

    @field_validator("api_keys")
    @classmethod
    def _check_api_keys(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for role, hashes in value.items():
            if role not in ROLES:
                msg = f"Unknown API role {role!r} (known: {', '.join(ROLES)})"
                raise ValueError(msg)
            for entry in hashes:
                name, _, digest = entry.rpartition(":")
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):  # noqa: PLR2004
                    msg = (
                        f"API keys of role {role!r} must be SHA-256 hex digests (64 lower-case hex),"
                        " optionally named as id:digest"
                    )
                    raise ValueError(msg)
                if name and not _KEY_ID.fullmatch(name):
                    msg = f"API key ids of role {role!r} must match {_KEY_ID.pattern}"
                    raise ValueError(msg)
        return value

    @field_validator("pseudonym_key", "experiment_salt")
    @classmethod
    def _check_secret_length(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value().encode("utf-8")) < 16:  # noqa: PLR2004
            msg = "Secrets must be at least 16 bytes"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _check_control_unit(self) -> Self:
        roster = [c.strip() for c in self.control_clusters]
        if not roster:
            return self
        if self.control_unit == "citizen":
            msg = "control_clusters needs control_unit caseworker or jobcentre"
            raise ValueError(msg)
        if not all(roster) or len(set(roster)) != len(roster):
            msg = "control_clusters must list distinct, non-empty cluster ids"
            raise ValueError(msg)
        n_control = math.floor(self.control_share * len(roster) + 0.5)
        if self.control_share > 0 and not 0 < n_control < len(roster):
            msg = (
                f"control_share {self.control_share:g} of {len(roster)} clusters leaves an arm "
                "without clusters; list more clusters"
            )
            raise ValueError(msg)
        return self

    def control_cluster_keys(self) -> tuple[str, ...]:
        """The roster as cluster pseudonyms (``bandit.privacy.pseudonymise_cluster``)."""
        from bandit.privacy import pseudonymise_cluster

        key = self.pseudonym_key_bytes()
        return tuple(pseudonymise_cluster(c, key, self.control_unit) for c in self.control_clusters)

    @model_validator(mode="after")
    def _approval_default_follows_environment(self) -> Self:
        # dev (make run, simulations, evaluation): every snapshot serves at once, so learning is
        # visible; any deployment (test/prod) is governed: only approved snapshots serve.
        if "model_approval" not in self.model_fields_set and self.environment == "dev":
            object.__setattr__(self, "model_approval", "auto")
        return self

    @model_validator(mode="after")
    def _enforce_non_default_secrets(self) -> Self:
        if self.environment == "dev":
            return self
        if self.simulated_time:
            msg = f"simulated_time is for development only, not environment={self.environment!r}"
            raise ValueError(msg)
        defaults = []
        if self.pseudonym_key.get_secret_value() == DEV_PSEUDONYM_KEY:
            defaults.append("pseudonym_key")
        if self.experiment_salt.get_secret_value() == DEV_EXPERIMENT_SALT:
            defaults.append("experiment_salt")
        dev_hashes = {h for hashes in _dev_api_key_hashes().values() for h in hashes}
        if any(h[-64:] in dev_hashes for hashes in self.api_keys.values() for h in hashes):
            defaults.append("api_keys")
        if defaults:
            msg = (
                f"The development default of {', '.join(defaults)} is not allowed when "
                f"environment={self.environment!r}; set NBI_{defaults[0].upper()}"
            )
            raise ValueError(msg)
        return self

    @property
    def horizon_seconds(self) -> float:
        """The reward horizon in seconds (``horizon_weeks`` weeks)."""
        return float(self.horizon_weeks * 7 * 24 * 3600)

    def pseudonym_key_bytes(self) -> bytes:
        """The pseudonymisation key as bytes."""
        return self.pseudonym_key.get_secret_value().encode("utf-8")

    def experiment_salt_bytes(self) -> bytes:
        """The control-arm salt as bytes."""
        return self.experiment_salt.get_secret_value().encode("utf-8")


@lru_cache
def get_settings() -> Settings:
    """The process's settings, read once from the environment (override in tests)."""
    return Settings()
