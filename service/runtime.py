"""The resources of one running app: settings, store, catalog, experiment, policy, metrics.

Built by the lifespan in :mod:`service.app`; handlers get it through :mod:`service.deps`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bandit.catalog import Catalog, default_catalog, load_catalog
from bandit.control import ExperimentConfig, Unit
from bandit.equity import EquityConfig, EquityGate
from bandit.errors import ModelConfigError, ModelFormatError
from bandit.policies import Policy, make_policy, policy_from_bytes
from service.capacity import CapacityTracker
from service.config import Settings
from service.metrics import ServiceMetrics
from service.model_watcher import PolicyRef
from service.store.base import DecisionStore

logger = logging.getLogger("nbi.runtime")


@dataclass
class Runtime:
    """Everything a request handler needs, owned by the app's lifespan."""

    settings: Settings
    store: DecisionStore
    catalog: Catalog
    experiment: ExperimentConfig
    policy: PolicyRef
    metrics: ServiceMetrics
    capacity: CapacityTracker
    policy_lock: threading.Lock = field(default_factory=threading.Lock)
    started_at: float = field(default_factory=time.time)
    serving_mode: str = "live"
    """``live``, ``shadow`` or ``practice`` (kill switch); set by :mod:`service.lifecycle`."""
    equity: EquityGate | None = field(default=None, init=False)
    """The scarce-seat reserve (``NBI_EQUITY_*``); ``None`` when off."""
    decision_pool: ThreadPoolExecutor = field(init=False)
    """Threads of the recommendation use case (:mod:`service.blocking`): ``decision_threads``,
    else one per admission slot (started on first use); shut down by the app's lifespan."""

    def __post_init__(self) -> None:
        self.equity = build_equity(self.settings, self.catalog)
        threads = self.settings.decision_threads or self.settings.max_concurrent_requests
        self.decision_pool = ThreadPoolExecutor(threads, thread_name_prefix="nbi-decide")

    def swap_policy(self, policy: Policy, version: str | None = None) -> None:
        """Serve ``policy`` from now on (in-flight requests keep the old one)."""
        self.policy.swap(policy, version)
        self.metrics.set_model(policy.model_version, policy.name, policy.n_updates, time.time())


def build_catalog(settings: Settings) -> Catalog:
    """The configured catalog, or the shipped default."""
    return (
        default_catalog() if settings.catalog_path is None else load_catalog(settings.catalog_path)
    )


def build_equity(settings: Settings, catalog: Catalog) -> EquityGate | None:
    """The scarce-seat reserve of :mod:`bandit.equity` over the catalog's weekly seats, or
    ``None`` when no seat is reserved or seats are not counted (``capacity_tracking`` off)."""
    if not settings.capacity_tracking:
        return None
    config = EquityConfig(
        reserve_share=settings.equity_reserve_share,
        priority_share=settings.equity_priority_share,
        window=settings.equity_window,
        scarce_families=frozenset(settings.equity_scarce_families),
    )
    capacity = {i.id: float(i.capacity) for i in catalog if i.capacity is not None}
    return EquityGate.build(catalog, capacity, config)


def build_experiment(settings: Settings) -> ExperimentConfig:
    """The RCT configuration from the settings."""
    return ExperimentConfig(
        salt=settings.experiment_salt_bytes(),
        control_share=settings.control_share,
        start_date=settings.experiment_start,
        name=settings.experiment_name,
        unit=Unit(settings.control_unit),
        clusters=settings.control_cluster_keys(),
    )


def policy_params(settings: Settings) -> dict[str, Any]:
    """Constructor parameters of the configured policy.

    For ``vw`` the target follows the delay strategy (``hazard`` learns citizen-weeks, the
    others settled rewards) and the horizon follows ``horizon_weeks``, unless
    ``policy_params`` sets them.
    """
    params: dict[str, Any] = {"floor": settings.floor, "seed": settings.seed}
    if settings.policy == "vw":
        params["target"] = "hazard" if settings.delay_strategy == "hazard" else "reward"
        params["horizon_weeks"] = settings.horizon_weeks
    params.update(settings.policy_params)
    return params


def fresh_policy(settings: Settings) -> Policy:
    """A new, untrained policy as configured."""
    return make_policy(settings.policy, **policy_params(settings))


def _normalised(params: Mapping[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(dict(params), sort_keys=True, default=str)))


def _changed(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Names whose (normalised) values differ between ``a`` and ``b``, sorted."""
    return [k for k in sorted({*a, *b}) if a.get(k) != b.get(k)]


def param_differences(stored: Mapping[str, Any], configured: Mapping[str, Any]) -> list[str]:
    """``name: stored -> configured`` for each parameter that differs.

    Examples
    --------
    >>> param_differences({"floor": 0.02, "seed": 0}, {"floor": 0.05, "seed": 0})
    ['floor: 0.02 -> 0.05']
    """
    a, b = _normalised(stored), _normalised(configured)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in _changed(a, b)]


def model_differences(stored: Policy, configured: Policy) -> list[str]:
    """What differs between a stored model and the configured one: the policy, then every
    parameter (``name: stored -> configured``); empty when the stored model may serve."""
    differences = param_differences(stored.get_params(), configured.get_params())
    if stored.name != configured.name:
        differences.insert(0, f"policy: {stored.name!r} -> {configured.name!r}")
    return differences


def migrated_policy(stored: Policy, configured: Policy) -> Policy | None:
    """``stored`` (its learned state) with ``configured``'s values of the parameters that
    only shape the served pmf (:meth:`~bandit.policies.base.Policy.exploration_params`),
    when those are all that differ; ``None`` when anything else differs (or nothing does).

    Examples
    --------
    >>> from bandit.policies import make_policy
    >>> old = make_policy("vw", gamma_scale=50.0, seed=1)
    >>> migrated_policy(old, make_policy("vw", seed=1)).gamma_scale
    200.0
    >>> migrated_policy(old, make_policy("vw", learning_rate=0.1, seed=1)) is None
    True
    """
    if stored.name != configured.name:
        return None
    changed = _changed(_normalised(stored.get_params()), _normalised(configured.get_params()))
    if not changed or not set(changed) <= stored.exploration_params():
        return None
    return stored.with_params(**{k: getattr(configured, k) for k in changed})


def initial_policy(settings: Settings, store: DecisionStore) -> Policy:
    """The newest stored snapshot of the configured policy, else a fresh one.

    A snapshot of another policy, or with parameters that differ from the settings (e.g. a
    changed ``NBI_FLOOR``), is never served silently: with ``model_param_change="refuse"``
    start-up fails with the list of differences; with ``"restart"`` a fresh model with the
    configured parameters starts (the old snapshot stays in the store); with ``"migrate"``
    a snapshot that differs only in exploration parameters keeps its learned state and
    takes the configured ones (:func:`migrated_policy`), anything else is refused.

    Raises
    ------
    ModelConfigError
        When the stored model does not match the settings and the setting says refuse.
    """
    snapshot = store.latest_model()
    if snapshot is None:
        return fresh_policy(settings)
    try:
        policy = policy_from_bytes(snapshot.data)
    except ModelFormatError:
        logger.warning("stored model %s is unreadable; starting a fresh model", snapshot.version)
        return fresh_policy(settings)
    fresh = fresh_policy(settings)
    differences = model_differences(policy, fresh)
    if not differences:
        return policy
    if settings.model_param_change == "restart":
        logger.warning(
            "stored model %s differs from the settings (%s); starting a fresh model",
            snapshot.version,
            "; ".join(differences),
        )
        return fresh
    if settings.model_param_change == "migrate":
        migrated = migrated_policy(policy, fresh)
        if migrated is not None:
            logger.warning(
                "stored model %s takes the configured exploration (%s); its learned state is kept",
                snapshot.version,
                "; ".join(differences),
            )
            return migrated
    msg = (
        f"The stored model {snapshot.version} differs from the settings ({'; '.join(differences)})."
        " Restore the settings it was trained with, set NBI_MODEL_PARAM_CHANGE=migrate to keep"
        " its learned state where only exploration settings differ, or "
        "NBI_MODEL_PARAM_CHANGE=restart to start a fresh model with the new settings"
    )
    raise ModelConfigError(msg)
