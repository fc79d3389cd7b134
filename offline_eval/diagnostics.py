"""Overlap diagnostics of a target policy on logged data."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from offline_eval.logs import LoggedBandit


@dataclass(frozen=True)
class Diagnostics:
    """Importance-weight diagnostics.

    Parameters
    ----------
    ess
        Effective sample size ``(sum w)^2 / sum w^2``.
    ess_share
        ``ess / n_rounds``.
    max_weight
        Largest importance weight.
    mean_weight
        Mean importance weight (about 1 when the logger supports the target).
    unsupported_share
        Share of rounds where the target puts mass on an action the logger never takes
        (logger pmf 0 when the full pmf is logged; otherwise an action absent from the log).
    unsupported_mass
        Mean target mass on such actions.
    """

    ess: float
    ess_share: float
    max_weight: float
    mean_weight: float
    unsupported_share: float
    unsupported_mass: float

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict."""
        return asdict(self)


def diagnose(logs: LoggedBandit, target_probs: np.ndarray) -> Diagnostics:
    """Compute :class:`Diagnostics`.

    Examples
    --------
    >>> logs = LoggedBandit(np.zeros((2, 1)), np.array([0, 0]), np.ones(2), np.full(2, 0.5), 2,
    ...                     pmf=np.array([[0.5, 0.5], [1.0, 0.0]]))
    >>> d = diagnose(logs, np.array([[1.0, 0.0], [0.5, 0.5]]))
    >>> d.ess, d.max_weight, d.unsupported_share, d.unsupported_mass  # w = (2, 1)
    (1.8, 2.0, 0.5, 0.25)
    """
    logs.check_target(target_probs)
    w = logs.importance_weights(target_probs)
    n = logs.n_rounds
    if logs.pmf is not None:
        never = logs.pmf <= 0
    else:
        seen = np.bincount(logs.action, minlength=logs.n_actions) > 0
        never = np.broadcast_to(~seen, target_probs.shape)
    mass = (target_probs * never).sum(axis=1)
    return weight_diagnostics(
        w,
        unsupported_share=float((mass > 0).mean()) if n else 0.0,
        unsupported_mass=float(mass.mean()) if n else 0.0,
    )


def weight_diagnostics(
    w: np.ndarray, *, unsupported_share: float, unsupported_mass: float
) -> Diagnostics:
    """:class:`Diagnostics` from the importance weights and the unsupported-mass figures
    (a streamed log accumulates the latter chunk by chunk)."""
    n = w.shape[0]
    total, squares = float(w.sum()), float((w * w).sum())
    ess = total * total / squares if squares > 0 else 0.0
    return Diagnostics(
        ess=ess,
        ess_share=ess / n if n else 0.0,
        max_weight=float(w.max()) if n else 0.0,
        mean_weight=float(w.mean()) if n else 0.0,
        unsupported_share=unsupported_share,
        unsupported_mass=unsupported_mass,
    )
