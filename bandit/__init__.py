"""Decision core of nbi: catalog, context, eligibility, policies, control arm, rewards.

Pure logic: imports none of ``simulator``, ``offline_eval`` or ``service``, and never FastAPI
or Redis.
"""

from __future__ import annotations

from bandit.catalog import Catalog, Family, Intervention, default_catalog, load_catalog
from bandit.context import CitizenContext, ProtectedAttributes, TargetGroup
from bandit.control import ExperimentConfig, Group
from bandit.eligibility import EligibilityResult, filter_eligible
from bandit.privacy import pseudonymise
from bandit.rewards import EmployedWithinHorizon, Outcome, OutcomeStatus, RewardValue
from bandit.types import Action, Decision, Features

__all__ = [
    "Action",
    "Catalog",
    "CitizenContext",
    "Decision",
    "EligibilityResult",
    "EmployedWithinHorizon",
    "ExperimentConfig",
    "Family",
    "Features",
    "Group",
    "Intervention",
    "Outcome",
    "OutcomeStatus",
    "ProtectedAttributes",
    "RewardValue",
    "TargetGroup",
    "default_catalog",
    "filter_eligible",
    "load_catalog",
    "pseudonymise",
]
