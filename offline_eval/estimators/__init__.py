"""Off-policy estimators behind one interface, and a registry by name."""

from __future__ import annotations

from offline_eval.estimators.base import BaseEstimator
from offline_eval.estimators.dm import DirectMethod
from offline_eval.estimators.dr import DoublyRobust
from offline_eval.estimators.ips import IPS
from offline_eval.estimators.replay import Replay
from offline_eval.estimators.sndr import SelfNormalizedDR
from offline_eval.estimators.snips import SNIPS
from offline_eval.estimators.switch_dr import SwitchDR
from offline_eval.reward_model import RewardModel, RidgeRewardModel

ESTIMATORS: dict[str, type[BaseEstimator]] = {
    cls.name: cls
    for cls in (IPS, SNIPS, DirectMethod, DoublyRobust, SelfNormalizedDR, SwitchDR, Replay)
}
MODEL_BASED = ("dm", "dr", "sndr", "switch_dr")


def default_estimators(
    reward_model: RewardModel | None = None, *, uniform_logger: bool = False
) -> list[BaseEstimator]:
    """One instance of each estimator (Replay only for uniformly logged data), sharing a model."""
    model = reward_model or RidgeRewardModel()
    out: list[BaseEstimator] = [
        IPS(),
        SNIPS(),
        DirectMethod(model),
        DoublyRobust(model),
        SelfNormalizedDR(model),
        SwitchDR(model),
    ]
    if uniform_logger:
        out.append(Replay())
    return out


__all__ = [
    "ESTIMATORS",
    "IPS",
    "MODEL_BASED",
    "SNIPS",
    "BaseEstimator",
    "DirectMethod",
    "DoublyRobust",
    "Replay",
    "SelfNormalizedDR",
    "SwitchDR",
    "default_estimators",
]
