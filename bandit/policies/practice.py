""" "Practice as usual": a rule policy that mimics caseworkers' historical choices.

Family weights follow the Danish activation mix (domain.md 5.3: guidance and upskilling
0.66-0.72 of activation, public wage subsidy 0.13-0.16, internships 0.07-0.16, private wage
subsidy 0.03-0.08) and shift with the case: early in the spell mostly contact, meetings and
job-search help; later internships and wage subsidies; mentors for health limitations and
kontanthjælp; the 6-week course for the low-educated. Within a family every offer is equally
likely. It does not learn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bandit.policies.base import StaticPolicy
from bandit.types import Action, Features

_EARLY_WEEKS = 13
_LONG_WEEKS = 26

BASE_FAMILY_WEIGHTS: Mapping[str, float] = {
    "standard_contact": 0.30,
    "individual_meetings": 0.16,
    "group_meetings": 0.06,
    "job_search_course": 0.10,
    "private_internship": 0.05,
    "public_internship": 0.05,
    "private_wage_subsidy": 0.03,
    "public_wage_subsidy": 0.07,
    "six_week_course": 0.06,
    "classroom_training": 0.08,
    "mentor": 0.04,
}


def family_weights(context: Features) -> dict[str, float]:
    """Caseworkers' family weights for this context (unnormalised)."""
    weights = dict(BASE_FAMILY_WEIGHTS)
    weeks = float(context.get("weeks_unemployed", 0))
    if weeks < _EARLY_WEEKS:
        for fam in ("standard_contact", "individual_meetings", "job_search_course"):
            weights[fam] *= 1.6
    elif weeks >= _LONG_WEEKS:
        for fam in ("private_internship", "public_internship", "public_wage_subsidy"):
            weights[fam] *= 2.0
        weights["private_wage_subsidy"] *= 1.5
        weights["standard_contact"] *= 0.5
    if context.get("target_group") == "kontanthjaelp":
        weights["mentor"] *= 2.5
        weights["public_internship"] *= 1.5
    if context.get("health_limitation"):
        weights["mentor"] *= 3.0
    if context.get("education") in ("lower_secondary", "vocational"):
        weights["six_week_course"] *= 1.5
    if context.get("danish_proficiency") in ("basic", "none"):
        weights["classroom_training"] *= 1.5
    return weights


def family_weight_matrix(columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """:func:`family_weights` for ``n`` rounds at once, shape ``(n, F)`` in
    :data:`BASE_FAMILY_WEIGHTS` order; ``columns`` holds the context features by name.

    Examples
    --------
    >>> w = family_weight_matrix({"weeks_unemployed": np.array([2, 30])}, 2)
    >>> bool(np.allclose(w[1], list(family_weights({"weeks_unemployed": 30}).values())))
    True
    """
    names = list(BASE_FAMILY_WEIGHTS)
    col = {name: i for i, name in enumerate(names)}
    out = np.tile(np.asarray(list(BASE_FAMILY_WEIGHTS.values()), dtype=float), (n, 1))

    def scale(mask: np.ndarray, families: Sequence[str], factor: float) -> None:
        for fam in families:
            out[:, col[fam]] = np.where(mask, out[:, col[fam]] * factor, out[:, col[fam]])

    def values(name: str, default: object) -> np.ndarray:
        raw = columns.get(name)
        return np.full(n, default, dtype=object) if raw is None else np.asarray(raw)

    weeks = values("weeks_unemployed", 0).astype(float)
    early, long = weeks < _EARLY_WEEKS, weeks >= _LONG_WEEKS
    scale(early, ("standard_contact", "individual_meetings", "job_search_course"), 1.6)
    scale(long, ("private_internship", "public_internship", "public_wage_subsidy"), 2.0)
    scale(long, ("private_wage_subsidy",), 1.5)
    scale(long, ("standard_contact",), 0.5)
    kontant = values("target_group", None) == "kontanthjaelp"
    scale(kontant, ("mentor",), 2.5)
    scale(kontant, ("public_internship",), 1.5)
    health = values("health_limitation", False).astype(bool)  # truthiness, as context.get
    scale(health, ("mentor",), 3.0)
    education = values("education", None)
    scale((education == "lower_secondary") | (education == "vocational"), ("six_week_course",), 1.5)
    danish = values("danish_proficiency", None)
    scale((danish == "basic") | (danish == "none"), ("classroom_training",), 1.5)
    return out


class PracticeAsUsualPolicy(StaticPolicy):
    """Rule policy mimicking caseworkers; the logging policy of historical data.

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("m", {"family": "mentor"}), Action("c", {"family": "standard_contact"})]
    >>> pmf = PracticeAsUsualPolicy(floor=0.0).probabilities({"weeks_unemployed": 2}, acts)
    >>> bool(pmf[1] > pmf[0])
    True
    """

    name = "practice"

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        weights = family_weights(context)
        default = min(weights.values())
        names = list(weights)
        code_of = {name: i for i, name in enumerate(names)}
        codes = np.fromiter(
            (code_of.get(str(a.features.get("family", "")), len(names)) for a in actions),
            dtype=np.intp,
            count=len(actions),
        )
        per_family = np.asarray([*weights.values(), default])
        counts = np.bincount(codes, minlength=len(names) + 1)
        if counts[len(names)]:  # offers of unknown families: each its own family
            unknown = [str(a.features.get("family", "")) for a in actions]
            family_count: dict[str, int] = {}
            for fam in unknown:
                family_count[fam] = family_count.get(fam, 0) + 1
            return np.asarray(
                [weights.get(f, default) / family_count[f] for f in unknown], dtype=float
            )
        pmf: np.ndarray = per_family[codes] / counts[codes]
        return pmf

    def batch_probabilities(
        self, columns: Mapping[str, np.ndarray], eligible: np.ndarray, actions: Sequence[Action]
    ) -> np.ndarray:
        """The floored pmf of ``n`` rounds at once, ``(n, K)`` (see
        :class:`~bandit.policies.batch.BatchProbabilities`); offers of unknown families go
        round by round through :meth:`probabilities`.

        Examples
        --------
        >>> from bandit.types import Action
        >>> acts = [Action("m", {"family": "mentor"}), Action("c", {"family": "standard_contact"})]
        >>> policy = PracticeAsUsualPolicy()
        >>> batch = policy.batch_probabilities({"weeks_unemployed": np.array([2])},
        ...                                    np.array([[True, True]]), acts)
        >>> bool(np.allclose(batch[0], policy.probabilities({"weeks_unemployed": 2}, acts)))
        True
        """
        n, k = eligible.shape
        names = list(BASE_FAMILY_WEIGHTS)
        code_of = {name: i for i, name in enumerate(names)}
        families = [str(a.features.get("family", "")) for a in actions]
        if any(f not in code_of for f in families):
            return self._rows(columns, eligible, actions)
        codes = np.asarray([code_of[f] for f in families], dtype=np.intp)
        weights = family_weight_matrix(columns, n)
        mask = eligible.astype(float, copy=False)
        blocks = _family_blocks(codes)
        if blocks is None:  # offers not grouped by family: one-hot products (exact)
            onehot = np.zeros((k, len(names)))
            onehot[np.arange(k), codes] = 1.0
            counts_all = mask @ onehot
        else:
            starts, block_codes = blocks
            counts_all = np.zeros((n, len(names)))
            counts_all[:, block_codes] = np.add.reduceat(mask, starts, axis=1)
        # apply_floor per round, in family space: p = w_f / c_f / total, total = sum_f w_f [c_f > 0]
        present = counts_all > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            per_offer = np.where(present, weights / counts_all, 0.0)
        total = np.where(present, weights, 0.0).sum(axis=1)
        k_i = counts_all.sum(axis=1)
        bad = ~np.isfinite(total) | (total <= 0)
        if bad.any():  # no weight on any eligible offer: uniform, as apply_floor does
            per_offer[bad] = np.where(present[bad], 1.0, 0.0)
            total[bad] = k_i[bad]
        per_offer = per_offer * ((1.0 - self.floor) / total)[:, None] + (self.floor / k_i)[:, None]
        if blocks is None:
            out: np.ndarray = per_offer @ onehot.T
        else:
            out = np.repeat(per_offer[:, block_codes], np.diff([*starts, k]), axis=1)
        out *= mask
        return out

    def _rows(
        self, columns: Mapping[str, np.ndarray], eligible: np.ndarray, actions: Sequence[Action]
    ) -> np.ndarray:
        out = np.zeros(eligible.shape)
        names = list(columns)
        for i in range(eligible.shape[0]):
            idx = np.flatnonzero(eligible[i])
            context = {name: _scalar(columns[name][i]) for name in names}
            out[i, idx] = self.probabilities(context, [actions[int(j)] for j in idx])
        return out


def _family_blocks(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Start index and family code of each run of offers when every family is one run."""
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    block_codes = codes[starts]
    if len(set(block_codes.tolist())) != block_codes.shape[0]:
        return None
    return starts, block_codes


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
