"""The resources of one running app: settings, store, catalog, experiment, policy, metrics.

Built by the lifespan in :mod:`service.app`; handlers get it through :mod:`service.deps`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from bandit.catalog import Catalog, default_catalog, load_catalog
from bandit.control import ExperimentConfig
from bandit.errors import ModelFormatError
from bandit.policies import Policy, make_policy, policy_from_bytes
from service.capacity import CapacityTracker
from service.config import Settings
from service.metrics import ServiceMetrics
from service.model_watcher import PolicyRef
from service.store.base import DecisionStore


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

    def swap_policy(self, policy: Policy, version: str | None = None) -> None:
        """Serve ``policy`` from now on (in-flight requests keep the old one)."""
        self.policy.swap(policy, version)
        self.metrics.set_model(policy.model_version, policy.name, policy.n_updates, time.time())


def build_catalog(settings: Settings) -> Catalog:
    """The configured catalog, or the shipped default."""
    return (
        default_catalog() if settings.catalog_path is None else load_catalog(settings.catalog_path)
    )


def build_experiment(settings: Settings) -> ExperimentConfig:
    """The RCT configuration from the settings."""
    return ExperimentConfig(
        salt=settings.experiment_salt_bytes(),
        control_share=settings.control_share,
        start_date=settings.experiment_start,
        name=settings.experiment_name,
    )


def fresh_policy(settings: Settings) -> Policy:
    """A new, untrained policy as configured."""
    return make_policy(
        settings.policy, floor=settings.floor, seed=settings.seed, **settings.policy_params
    )


def initial_policy(settings: Settings, store: DecisionStore) -> Policy:
    """The newest stored snapshot of the configured policy, else a fresh one."""
    snapshot = store.latest_model()
    if snapshot is not None:
        try:
            policy = policy_from_bytes(snapshot.data)
        except ModelFormatError:
            policy = None
        if policy is not None and policy.name == settings.policy:
            return policy
    return fresh_policy(settings)
