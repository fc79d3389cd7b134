"""Vowpal Wabbit contextual bandit (``cb_explore_adf`` family) behind the policy interface.

How the pmf and the expected rewards are obtained, per ``exploration``:

* ``"squarecb"`` (default) and ``"epsilon"``: ONE ``--cb_adf --cb_type mtr`` workspace predicts
  the cost of every eligible action (its scores are the expected rewards, ``reward = -cost``)
  and the pmf is computed here from those scores with the same rule VW's ``--cb_explore_adf``
  applies: SquareCB's inverse-gap weighting ``p_a = 1 / (K + gamma (c_a - c_min))`` with
  ``gamma = gamma_scale * t ** gamma_exponent`` (``t`` = examples learned), the rest of the
  mass on the best action; or epsilon-greedy. VW's explore reductions do not expose the scores,
  so this gives both from one workspace at the cost of one predict.
* ``"regcb"``, ``"regcbopt"`` and ``"cover"``: the pmf comes from a ``--cb_explore_adf``
  workspace with that algorithm, and a second ``--cb_adf`` workspace supplies the expected
  rewards; both learn from every event (about twice the cost).

VW never samples: the base class floors the pmf and samples deterministically from
``(seed, event_id)``.

References
----------
Foster, D. and Rakhlin, A. (2020). Beyond UCB: optimal and efficient contextual bandits with
regression oracles. ICML.
Foster, D. et al. (2018). Practical contextual bandits with regression oracles. ICML.
"""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from hashlib import blake2b
from itertools import accumulate
from typing import Any, ClassVar, Self

import numpy as np

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies.base import ActionSet, Policy
from bandit.policies.smallk import (
    SMALL_K,
    all_finite,
    epsilon_greedy_pmf_list,
    np_sum,
    squarecb_pmf_list,
)
from bandit.types import Action, Decision, Features
from bandit.vw.examples import (
    ID_NAMESPACE,
    ActionLineCache,
    SharedLineCache,
    build_example,
    format_shared,
    labelled,
)
from bandit.vw.workspace import VWLearner

EXPLORATIONS = ("squarecb", "epsilon", "regcb", "regcbopt", "cover")
TARGETS = ("reward", "hazard")
LOSSES = ("logistic", "squared")
DEFAULT_BUCKETS = (0, 2, 5, 9, 13, 18)
"""Start weeks of the hazard model's time buckets (weeks 0-1, 2-4, 5-8, 9-12, 13-17, 18+)."""
TIME_NAMESPACE = "t"
_PREDICTION_BOUND = "1000"
_HAZARD_CLIP = (0.0, 0.95)
_OWN_PMF = frozenset({"squarecb", "epsilon"})
_LEN = struct.Struct(">Q")
_MAX_BITS = 30
_U64 = float(2**64)
_NUMPY_LINK_K = 24
"""From this many actions :meth:`VWPolicy.choose` links the scores in numpy (measured faster)."""
_MAX_LABELLED = 4096
"""Labelled action lines kept for learning (action line and label -> the labelled line)."""


def squarecb_pmf(costs: np.ndarray, gamma: float) -> np.ndarray:
    """SquareCB inverse-gap weighting over predicted costs (lower is better).

    Examples
    --------
    >>> squarecb_pmf(np.array([0.0, 1.0, 1.0]), gamma=0.0).round(3).tolist()
    [0.333, 0.333, 0.333]
    >>> squarecb_pmf(np.array([0.0, 1.0]), gamma=8.0).round(3).tolist()
    [0.9, 0.1]
    """
    k = costs.shape[0]
    best = int(np.argmin(costs))
    pmf: np.ndarray = 1.0 / (k + gamma * (costs - costs[best]))
    pmf[best] = 0.0
    pmf[best] = max(1.0 - float(pmf.sum()), 0.0)
    return pmf


def squarecb_gamma(gamma_scale: float, gamma_exponent: float, k: int, t: float) -> float:
    """SquareCB's learning-rate ``gamma`` for ``k`` actions after ``t`` learned outcomes.

    ``gamma = gamma_scale * sqrt(k) * t ** gamma_exponent``: Foster & Rakhlin (2020) set
    ``gamma ~ sqrt(K T / log(T / delta))``. VW's ``gamma_scale * t ** 0.5`` omits ``sqrt(K)``;
    with hundreds of offers whose true values differ by a few percentage points it keeps the
    inverse-gap weights ``1 / (K + gamma gap)`` near uniform for years, so the action-set
    size enters here as the literature does.

    Examples
    --------
    >>> round(squarecb_gamma(10.0, 0.5, 4, 100.0), 1)
    200.0
    """
    return float(gamma_scale * math.sqrt(k) * max(t, 0.0) ** gamma_exponent)


def epsilon_greedy_pmf(costs: np.ndarray, epsilon: float) -> np.ndarray:
    """Epsilon-greedy over predicted costs: ``epsilon / K`` each, the rest shared by the best.

    Exactly tied best actions share the greedy mass, as VW's greedy exploration does.

    Examples
    --------
    >>> epsilon_greedy_pmf(np.array([0.5, -1.0]), 0.2).round(3).tolist()
    [0.1, 0.9]
    >>> epsilon_greedy_pmf(np.zeros(4), 0.2).round(3).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    k = costs.shape[0]
    pmf = np.full(k, epsilon / k)
    best = costs == costs.min()
    pmf[best] += (1.0 - epsilon) / int(best.sum())
    return pmf


class VWPolicy(Policy):
    """Contextual bandit learned online by Vowpal Wabbit on ADF examples (``-q ca``).

    Two targets share the exploration rules:

    * ``target="reward"``: the regressor predicts the settled reward of each offer (e.g.
      employed within the horizon) and learns once per outcome.
    * ``target="hazard"`` (discrete-time hazard): the regressor predicts the weekly job
      hazard ``h(x, a, t)`` of citizen-week ``t`` after the decision; every week a citizen is
      still without a job is one observation (:meth:`learn_at_risk`), every job an event. The
      expected reward is ``P(job within H) = 1 - prod_t (1 - h_t)``. The week's time bucket
      (namespace ``t``) and the offer's programme phase that week (``p``: during, last week,
      after) are crossed with the offer only (``-q tf``, ``-q ta``, ``-q pf``), so the linear
      predictor is ``f(x, a) + g(t, a)``: one predict over the offers gives ``f``, and ``g``
      is a per-week table computed once per model state and cached.

    Learning uses the labelled action's line only (shared features plus that offer), an
    unweighted regression (logistic by default): SquareCB's regression oracle (Foster &
    Rakhlin 2020), about 100 times cheaper than learning on the full 300-offer example, and
    free of VW's ``1/(p K)`` example weights that shrink each update as the action set grows.

    Parameters
    ----------
    exploration
        ``"squarecb"`` (default), ``"epsilon"``, ``"regcb"``, ``"regcbopt"`` or ``"cover"``.
    gamma_scale, gamma_exponent
        SquareCB's ``gamma = gamma_scale * sqrt(K) * t ** gamma_exponent``
        (:func:`squarecb_gamma`). 200 (with ``floor = 0.03``): against 50, the share of the
        observable oracle's gain at the end of simulated year 2 rose from 0.47-0.66 to
        0.58-0.69 (mean 0.57 to 0.63, 5 seeds, ``bench/bench_learning.py``); the floor keeps
        exploring every family, and a larger ``gamma`` stops spending a tenth of the
        recommendations on offers the model already rates lower.
    epsilon
        Exploration rate for ``"epsilon"`` (on top of the base class's exploration mass).
    cover
        Number of policies for ``"cover"``.
    learning_rate, power_t
        VW ``--learning_rate`` and ``--power_t``. The defaults (0.05, 0.5) were chosen in the
        full-catalog simulator (``docs/decisions.md``): VW's 0.5 with the logistic loss makes
        the first update of a rare case-offer combination push its estimate to 0 or 1, and
        the argmax then chases those extremes; ``power_t = 1`` freezes early estimates.
    interactions
        Interactions between namespaces (two letters: ``--quadratic``; more:
        ``--interactions``): ``c`` context, ``s`` last sector, ``f`` offer family, ``o`` offer
        sector, ``a`` other offer features (provider, length). The default crosses the case
        with the family and the last sector with the offer's sector (``cf``, ``so``); adding
        ``ca`` or ``ccf`` measured worse (more weights, more noise, same data).
    bits
        Feature hash bits (``-b``).
    target
        ``"reward"`` or ``"hazard"`` (see above).
    horizon_weeks
        Reward horizon ``H`` of the hazard target.
    hazard_buckets
        Start weeks of the hazard model's time buckets (increasing, first 0).
    loss
        ``"logistic"`` (default; 0/1 rewards, estimates stay in (0, 1) and small rates are
        not pulled to 0 as squared-loss SGD does under VW's adaptive updates, measured) or
        ``"squared"`` (any reward).
    explore_families
        Spread the exploration mass (``floor``) evenly over the eligible offers' families and
        then over each family's offers, instead of evenly over offers: with 60 internships and
        1 standard contact, per-offer spreading explores large families 60 times more, and a
        family the model underrates early (lock-in shows before the gain) is never tried
        enough to be corrected. Each offer keeps at least ``floor / (F n_f)``.
    optimism
        Bonus ``optimism / sqrt(n_f + 1)`` on the scores that set the pmf (not on the shown
        estimates), ``n_f`` the outcomes seen for the offer's family: a family the model has
        rarely seen is tried until its evidence grows (0 = off). 0.3 (default) raised the share
        of the observable oracle's gain in the second quarter from 0.37 to 0.47 and at the end
        of year 2 from 0.56 to 0.57 (5 seeds, ``bench/bench_learning.py``).
    family_calibration
        Per-family correction of the scores that set the pmf (not of the shown estimates):
        each offer's estimate less its family's mean residual beyond the model's overall one
        (:meth:`~bandit.policies.base.Policy.family_residual`, prediction minus outcome of
        the family's recent followed recommendations), shrunk by ``n_f / (n_f + value)``.
        A model that under-rates a family early learns too little from it later (its
        recommendations are few and carry the winner's curse); this pulls the ranking back
        to what the family's outcomes show. 0 = off.
    offer_ids
        Learn a main effect per offer id (namespace ``i``). Off by default: offers of a family
        differ by about a percentage point, and several hundred noisy id effects make the
        argmax chase noise; descriptive features (sector, provider, length) still tell
        offers apart.
    quiet
        Pass ``--quiet`` to VW.
    floor, seed
        See :class:`~bandit.policies.base.Policy`; ``seed`` is also VW's ``--random_seed``.

    Examples
    --------
    >>> from bandit.types import Action
    >>> acts = [Action("a", {"family": "mentor"}), Action("b", {"family": "standard_contact"})]
    >>> policy = VWPolicy(seed=1)
    >>> for i in range(30):
    ...     d = policy.choose({"weeks_unemployed": 4}, acts, event_id=f"e{i}")
    ...     policy.learn(d, 1.0 if d.chosen_action.id == "b" else 0.0)
    >>> d = policy.choose({"weeks_unemployed": 4}, acts, event_id="next")
    >>> d.expected_rewards[1] > d.expected_rewards[0], d.pmf[1] > 0.5
    (True, True)
    """

    name: ClassVar[str] = "vw"

    def __init__(
        self,
        *,
        exploration: str = "squarecb",
        gamma_scale: float = 200.0,
        gamma_exponent: float = 0.5,
        epsilon: float = 0.05,
        cover: int = 4,
        learning_rate: float = 0.05,
        power_t: float = 0.5,
        interactions: Sequence[str] = ("cf", "so"),
        bits: int = 18,
        target: str = "reward",
        horizon_weeks: int = 26,
        hazard_buckets: Sequence[int] = DEFAULT_BUCKETS,
        loss: str = "logistic",
        offer_ids: bool = False,
        explore_families: bool = True,
        optimism: float = 0.3,
        family_calibration: float = 0.0,
        quiet: bool = True,
        floor: float = 0.03,
        seed: int = 0,
    ) -> None:
        super().__init__(floor=floor, seed=seed)
        self.exploration = exploration
        self.gamma_scale = gamma_scale
        self.gamma_exponent = gamma_exponent
        self.epsilon = epsilon
        self.cover = cover
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.interactions = tuple(interactions)
        self.bits = bits
        self.target = target
        self.horizon_weeks = horizon_weeks
        self.hazard_buckets = tuple(int(b) for b in hazard_buckets)
        self.loss = loss
        self.offer_ids = offer_ids
        self.explore_families = explore_families
        self.optimism = optimism
        self.family_calibration = family_calibration
        self.quiet = quiet
        self._validate()
        self._lines = ActionLineCache()
        self._shared = SharedLineCache()
        self._scorer = VWLearner(self._scorer_args())
        self._explorer = None if exploration in _OWN_PMF else VWLearner(self._explorer_args())
        self._time_rows: dict[str, int] = {}
        self._time_table = np.zeros((0, horizon_weeks))
        self._time_cache_state = -1
        self._family_codes: dict[str, int] = {}  # action id -> family code
        self._family_index: dict[str, int] = {}  # family -> code
        self._labelled: dict[tuple[str, float], str] = {}
        self._version: tuple[int, str] = (-1, "")
        self._version_prefix = ""
        # choose() runs the small-K rounds of the reward target with its own pmf in one pass
        self._fused = not self.learns_hazard and exploration in _OWN_PMF

    # ------------------------------------------------------------------ configuration

    def _validate(self) -> None:
        buckets = self.hazard_buckets
        checks: list[tuple[bool, str]] = [
            (self.exploration in EXPLORATIONS, f"exploration must be one of {EXPLORATIONS}"),
            (_positive(self.gamma_scale), "gamma_scale must be a finite number > 0"),
            (_finite(self.gamma_exponent) and self.gamma_exponent >= 0, "gamma_exponent >= 0"),
            (_finite(self.epsilon) and 0.0 <= self.epsilon <= 1.0, "0 <= epsilon <= 1"),
            (isinstance(self.cover, int) and self.cover >= 1, "cover must be an int >= 1"),
            (_positive(self.learning_rate), "learning_rate must be a finite number > 0"),
            (_finite(self.power_t) and 0 <= self.power_t <= 1, "0 <= power_t <= 1"),
            (isinstance(self.bits, int) and 1 <= self.bits <= _MAX_BITS, "1 <= bits <= 30"),
            (all(_is_interaction(q) for q in self.interactions), "interactions like 'ca'"),
            (self.target in TARGETS, f"target must be one of {TARGETS}"),
            (self.loss in LOSSES, f"loss must be one of {LOSSES}"),
            (isinstance(self.offer_ids, bool), "offer_ids must be true or false"),
            (isinstance(self.explore_families, bool), "explore_families must be true or false"),
            (_finite(self.optimism) and self.optimism >= 0, "optimism must be >= 0"),
            (
                _finite(self.family_calibration) and self.family_calibration >= 0,
                "family_calibration must be >= 0",
            ),
            (
                isinstance(self.horizon_weeks, int) and 1 <= self.horizon_weeks <= 104,  # noqa: PLR2004
                "horizon_weeks must be an int in 1..104",
            ),
            (
                bool(buckets)
                and buckets[0] == 0
                and all(a < b for a, b in zip(buckets, buckets[1:], strict=False))
                and buckets[-1] < self.horizon_weeks,
                "hazard_buckets must increase from 0 and start below horizon_weeks",
            ),
            (
                self.target == "reward" or self.exploration in _OWN_PMF,
                "target='hazard' needs exploration 'squarecb' or 'epsilon'",
            ),
        ]
        for ok, message in checks:
            if not ok:
                msg = f"Invalid VWPolicy parameter: {message}"
                raise InvalidInputError(msg)

    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, stored unchanged under the same names."""
        return {
            "exploration": self.exploration,
            "gamma_scale": self.gamma_scale,
            "gamma_exponent": self.gamma_exponent,
            "epsilon": self.epsilon,
            "cover": self.cover,
            "learning_rate": self.learning_rate,
            "power_t": self.power_t,
            "interactions": self.interactions,
            "bits": self.bits,
            "target": self.target,
            "horizon_weeks": self.horizon_weeks,
            "hazard_buckets": self.hazard_buckets,
            "loss": self.loss,
            "offer_ids": self.offer_ids,
            "explore_families": self.explore_families,
            "optimism": self.optimism,
            "quiet": self.quiet,
            **super().get_params(),
            # listed only when on, so models stored before the option keep their version
            **({"family_calibration": self.family_calibration} if self.family_calibration else {}),
        }

    @classmethod
    def _unit_test_params(cls) -> Iterator[dict[str, Any]]:
        yield {"floor": 0.05, "seed": 7}
        yield {"exploration": "epsilon", "epsilon": 0.2, "seed": 3}
        yield {"exploration": "regcbopt", "seed": 5, "bits": 16}
        yield {"exploration": "cover", "cover": 3, "seed": 11}
        yield {"target": "hazard", "seed": 13, "horizon_weeks": 8, "hazard_buckets": (0, 3)}

    def _family_uncertainty(self, actions: Sequence[Action]) -> np.ndarray:
        """``1 / sqrt(n_f + 1)`` per action, ``n_f`` the outcomes seen for its family."""
        codes = self._family_code_array(actions)
        seen = self._family_n
        per_family = np.asarray(
            [1.0 / math.sqrt(seen.get(family, 0.0) + 1.0) for family in self._family_index]
        )
        out: np.ndarray = per_family[codes]
        return out

    def _family_corrections(self, families: Iterable[str]) -> list[float]:
        """The ``family_calibration`` correction of each family's scores (a cost: its mean
        residual beyond the model's overall one, shrunk by its evidence)."""
        strength = self.family_calibration
        return [self.family_residual(family, strength) for family in families]

    def _family_code_array(self, actions: Sequence[Action]) -> np.ndarray:
        """Each action's family as a small integer, cached per offer id (codes index
        ``self._family_index``, which is in first-seen order) and per action set."""
        prepared = self._cached_set(actions)
        if prepared is not None:
            cached: np.ndarray | None = prepared.cache.get("family_codes")
            if cached is not None:
                return cached
        code_by_id = self._family_codes
        try:
            codes = np.fromiter(
                (code_by_id[a.id] for a in actions), dtype=np.intp, count=len(actions)
            )
        except KeyError:
            families = self._family_index
            for a in actions:
                family = str(a.features.get("family", ""))
                code_by_id[a.id] = families.setdefault(family, len(families))
            codes = np.fromiter(
                (code_by_id[a.id] for a in actions), dtype=np.intp, count=len(actions)
            )
        if prepared is not None:
            prepared.cache["family_codes"] = codes
        return codes

    def _exploration_weights(self, actions: Sequence[Action]) -> np.ndarray | None:
        if not self.explore_families:
            return None
        prepared = self._cached_set(actions)
        if prepared is not None:
            cached: np.ndarray | None = prepared.cache.get("explore_weights")
            if cached is not None:
                return cached
        codes = self._family_code_array(actions)
        counts = np.bincount(codes)
        weights: np.ndarray = 1.0 / (np.count_nonzero(counts) * counts[codes])
        if prepared is not None:
            prepared.cache["explore_weights"] = weights
        return weights

    def exploration_params(self) -> frozenset[str]:
        """:meth:`Policy.exploration_params`; with the pmf computed here (``squarecb``,
        ``epsilon``) also SquareCB's gamma, epsilon, the optimism bonus, the family
        calibration and the family spreading of the floor (VW's own explorers keep theirs
        in their model)."""
        base = super().exploration_params()
        if self.exploration not in _OWN_PMF:
            return base
        own = {"gamma_scale", "gamma_exponent", "epsilon", "optimism", "family_calibration"}
        return base | own | {"explore_families"}

    @property
    def learns_hazard(self) -> bool:
        """True when the model is a discrete-time hazard (learn with :meth:`learn_at_risk`)."""
        return self.target == "hazard"

    def _common_args(self) -> list[str]:
        args = ["--learning_rate", repr(float(self.learning_rate))]
        args += ["--power_t", repr(float(self.power_t)), "--bit_precision"]
        args += [str(self.bits), "--random_seed", str(self.seed % 2**31)]
        for q in self.interactions:
            args += ["--quadratic" if len(q) == 2 else "--interactions", q]  # noqa: PLR2004
        if self.loss == "logistic":
            args += ["--loss_function", "logistic"]
        if not self.offer_ids:
            args += ["--ignore", ID_NAMESPACE]
        if self.learns_hazard:
            args += ["--quadratic", TIME_NAMESPACE + "f", "--quadratic", TIME_NAMESPACE + "a"]
            args += ["--quadratic", PHASE_NAMESPACE + "f"]
        if self.learns_hazard or self.loss == "logistic":
            # Predictions must stay linear (no clamping to the labels' range) so that the
            # context and time parts can be predicted apart and added.
            args += ["--min_prediction", "-" + _PREDICTION_BOUND]
            args += ["--max_prediction", _PREDICTION_BOUND]
        return [*args, "--quiet"] if self.quiet else args

    def _scorer_args(self) -> list[str]:
        return ["--cb_adf", "--cb_type", "mtr", *self._common_args()]

    def _explorer_args(self) -> list[str]:
        algo = ["--cover", str(self.cover)] if self.exploration == "cover" else []
        algo = algo or [f"--{self.exploration}"]
        return ["--cb_explore_adf", *algo, "--cb_type", "mtr", *self._common_args()]

    # ------------------------------------------------------------------ policy hooks

    def _example(
        self,
        context: Features,
        actions: Sequence[Action],
        label: tuple[int, float, float] | None = None,
    ) -> list[str]:
        return build_example(self._shared.line(context), self._lines.lines(actions), label=label)

    def _action_block(self, actions: Sequence[Action]) -> str:
        """The action lines joined by newlines, cached per action set."""
        prepared = self._cached_set(actions)
        if prepared is None:
            return "\n".join(self._lines.lines(actions))
        block: str | None = prepared.cache.get("vw_block")
        if block is None:
            block = prepared.cache["vw_block"] = "\n".join(self._lines.lines(actions))
        return block

    def _action_examples(self, actions: Sequence[Action]) -> list[Any]:
        """The scorer's parsed action examples, cached per action set and scorer (a reloaded
        or swapped scorer parses its own)."""
        scorer = self._scorer
        prepared = self._cached_set(actions)
        if prepared is None:
            return scorer.action_examples(self._lines.lines(actions))
        hit: tuple[VWLearner, list[Any]] | None = prepared.cache.get("vw_examples")
        if hit is None or hit[0] is not scorer:
            hit = prepared.cache["vw_examples"] = (
                scorer,
                scorer.action_examples(self._lines.lines(actions)),
            )
        return hit[1]

    def _predict_costs(self, shared: str, actions: Sequence[Action]) -> list[float]:
        """The scorer's costs of ``[shared, *action lines]``: the action lines parsed once
        (:meth:`~bandit.vw.workspace.VWLearner.predict_parsed`), or the example text (the
        same text as ``"\n".join(self._example(context, actions))``, the block cached) when
        the scorer does not reuse parsed examples."""
        if getattr(self._scorer, "reuse_action_examples", False):
            return self._scorer.predict_parsed(shared, self._action_examples(actions))
        return self._scorer.predict_text(f"{shared}\n{self._action_block(actions)}")

    def _expected_rewards(self, context: Features, actions: Sequence[Action]) -> np.ndarray:
        shared = self._shared.line(context)
        costs = self._predict_costs(shared, actions)
        self._raw_scores = (costs, shared)
        scores = 0.0 - np.asarray(costs, dtype=float)  # = rewards_from_costs, elementwise
        if not self.learns_hazard:
            return self._link(scores)
        return self._job_probability(scores, actions)

    def _choice_scores(
        self, context: Features, actions: Sequence[Action]
    ) -> tuple[np.ndarray | list[float], np.ndarray | list[float]]:
        """Up to :data:`~bandit.policies.smallk.SMALL_K` actions the link, the exploration
        rule and (in the base class) the floor and the sampling run on lists: the same
        operations in the same order as the numpy path, bit-identical."""
        k = len(actions)
        if self.learns_hazard or self._explorer is not None or k > SMALL_K:
            return super()._choice_scores(context, actions)
        shared = self._shared.line(context)
        costs = self._predict_costs(shared, actions)
        self._raw_scores = (costs, shared)
        if not all_finite(costs):
            scores = self._link(0.0 - np.asarray(costs, dtype=float))
            return scores, self._pmf(context, actions, scores)
        expected = [0.0 - c for c in costs]  # = rewards_from_costs
        if self.loss != "squared":
            half = np.tanh(np.asarray([0.5 * r for r in expected])).tolist()
            expected = [0.5 * (1.0 + t) for t in half]
        if k == 1:
            return expected, [1.0]
        costs = [-r for r in expected]
        if self.optimism > 0:
            codes = self._family_code_list(actions)
            seen = self._family_n
            per_family = [
                1.0 / math.sqrt(seen.get(family, 0.0) + 1.0) for family in self._family_index
            ]
            bonus = self.optimism
            costs = [c - bonus * per_family[code] for c, code in zip(costs, codes, strict=True)]
        if self.family_calibration > 0:
            codes = self._family_code_list(actions)
            fixes = self._family_corrections(self._family_index)
            costs = [c + fixes[code] for c, code in zip(costs, codes, strict=True)]
        if self.exploration == "squarecb":
            gamma = squarecb_gamma(self.gamma_scale, self.gamma_exponent, k, self.learning_steps)
            return expected, squarecb_pmf_list(costs, gamma)
        return expected, epsilon_greedy_pmf_list(costs, self.epsilon)

    def choose(self, context: Features, actions: Sequence[Action], *, event_id: str) -> Decision:
        """:meth:`Policy.choose`; up to :data:`~bandit.policies.smallk.SMALL_K` actions of the
        reward target with the squarecb or epsilon pmf in one pass: predict, link, exploration
        rule, floor and sampling on lists, with the per-set data (parsed action examples,
        family codes, the floor's spread) prepared once per action set. The same operations
        in the same order as :meth:`_choice_scores` and the base class, bit-identical
        (``tests/bandit/test_vw_round_fingerprints.py``)."""
        if not (self._fused and event_id):
            return super().choose(context, actions, event_id=event_id)
        prepared = self._prepare(actions)
        actions = prepared.actions
        k = len(actions)
        if k > SMALL_K:
            return super().choose(context, actions, event_id=event_id)
        self._current_set = prepared
        scorer = self._scorer
        state: _RoundState | None = prepared.cache.get("vw_round")
        if state is None or state.scorer is not scorer:
            state = prepared.cache["vw_round"] = self._round_state(prepared)
        shared = format_shared(context)  # a new context mostly: no content-keyed cache
        if getattr(scorer, "reuse_action_examples", False):  # as _predict_costs
            examples = state.examples
            if examples is None:
                examples = state.examples = self._action_examples(actions)
            costs = scorer.predict_parsed(shared, examples)
        else:
            costs = scorer.predict_text(f"{shared}\n{self._action_block(actions)}")
        if not math.isfinite(sum(costs)):  # any NaN or inf (or an overflowing sum): the
            # numpy path, which predicts the same costs again
            return super().choose(context, actions, event_id=event_id)
        expected = self._linked(costs)
        self._raw_scores = raw = (costs, shared, expected)
        pmf = self._floored_pmf(expected, state)
        # deterministic_uniform(seed, event_id) and sample_index
        digest = blake2b(f"{self.seed}:{event_id}".encode(), digest_size=8).digest()
        cdf = list(accumulate(pmf))
        u = int.from_bytes(digest, "big") / _U64
        index = min(bisect_right(cdf, u * cdf[-1]), k - 1)
        n = self.n_updates
        version = self._version
        if version[0] != n:  # model_version: f"{name}-{fingerprint}-{n:08d}"
            prefix = self._version_prefix
            if not prefix:
                prefix = self._version_prefix = f"{self.name}-{self._params_fingerprint()}-"
            plain = type(self).model_version is Policy.model_version
            version = self._version = (n, f"{prefix}{n:08d}" if plain else self.model_version)
        decision = Decision(
            event_id=event_id,
            context=dict(context),
            actions=actions,
            pmf=tuple(pmf),
            chosen=index,
            propensity=pmf[index],
            expected_rewards=tuple(expected),
            model_version=version[1],
            policy=self.name,
        )
        self._choice_memo = (decision, n, raw)
        return decision

    def _linked(self, costs: list[float]) -> list[float]:
        """:meth:`_link` of the rewards ``-costs`` on a list, bit-identical."""
        if self.loss == "squared":
            return [0.0 - c for c in costs]  # = rewards_from_costs
        if len(costs) < _NUMPY_LINK_K:  # 0.5 (1 + tanh(0.5 s)), the tanh in numpy as in _link
            half = np.tanh(np.asarray([0.5 * (0.0 - c) for c in costs])).tolist()
            return [0.5 * (1.0 + t) for t in half]
        # the same elementwise operations in numpy
        linked = 0.5 * (1.0 + np.tanh(0.5 * (0.0 - np.frombuffer(array("d", costs)))))
        out: list[float] = linked.tolist()
        return out

    def _floored_pmf(self, expected: list[float], state: _RoundState) -> list[float]:
        """:meth:`_pmf` and the base class's floor (:func:`~bandit.policies.smallk.
        apply_floor_list`) on lists: the same operations in the same order, bit-identical."""
        k = len(expected)
        if k == 1:
            pmf = [1.0]
        else:
            if self.optimism > 0:  # costs - optimism / sqrt(n_f + 1)
                seen = self._family_n
                per_family = [1.0 / math.sqrt(seen.get(f, 0.0) + 1.0) for f in state.families]
                bonus = self.optimism
                costs = [
                    -r - bonus * per_family[code]
                    for r, code in zip(expected, state.codes, strict=True)
                ]
            else:
                costs = [-r for r in expected]
            if self.family_calibration > 0:
                fixes = self._family_corrections(state.families)
                costs = [c + fixes[code] for c, code in zip(costs, state.codes, strict=True)]
            if self.exploration == "squarecb":  # squarecb_pmf_list
                gamma = squarecb_gamma(
                    self.gamma_scale, self.gamma_exponent, k, float(self.n_updates)
                )
                low = min(costs)
                best = costs.index(low)  # the first minimum, as np.argmin
                pmf = [1.0 / (k + gamma * (c - low)) for c in costs]
                pmf[best] = 0.0
                pmf[best] = max(1.0 - np_sum(pmf), 0.0)
            else:
                pmf = epsilon_greedy_pmf_list(costs, self.epsilon)
        # apply_floor_list with floor * (w / sum(w)) (or floor / K) prepared per action set
        total = np_sum(pmf)
        if not math.isfinite(total) or total <= 0 or min(pmf) < 0:
            pmf, total = [1.0 / k] * k, 1.0
        keep = 1.0 - self.floor
        spread = state.spread
        if spread is None:
            base = self.floor / k
            if total == 1.0:  # p / 1.0 == p exactly
                return [base + keep * p for p in pmf]
            return [base + keep * (p / total) for p in pmf]
        if total == 1.0:
            return [a + keep * p for a, p in zip(spread, pmf, strict=True)]
        return [a + keep * (p / total) for a, p in zip(spread, pmf, strict=True)]

    def _round_state(self, prepared: ActionSet) -> _RoundState:
        """What :meth:`choose` needs per action set and scorer (see :class:`_RoundState`)."""
        actions = prepared.actions
        codes = self._family_code_list(actions)
        by_code = {code: family for family, code in self._family_index.items()}
        present = sorted(set(codes))
        local = {code: i for i, code in enumerate(present)}
        weights = self._exploration_weights(actions)
        spread = None
        if weights is not None:  # apply_floor_list: floor * (w / sum(w)), sum in numpy's order
            weight_list: list[float] = weights.tolist()
            wsum = np_sum(weight_list)
            spread = [self.floor * (w / wsum) for w in weight_list]
        return _RoundState(
            scorer=self._scorer,
            examples=None,
            families=[by_code[code] for code in present],
            codes=[local[code] for code in codes],
            spread=spread,
        )

    def _family_code_list(self, actions: Sequence[Action]) -> list[int]:
        prepared = self._cached_set(actions)
        if prepared is None:
            codes: list[int] = self._family_code_array(actions).tolist()
            return codes
        cached: list[int] | None = prepared.cache.get("family_code_list")
        if cached is None:
            cached = prepared.cache["family_code_list"] = self._family_code_array(actions).tolist()
        return cached

    def _memo_prediction(self, raw: Any, index: int) -> float | None:
        # An mtr --cb_adf score depends on the shared features and that action's line only,
        # so the chosen action's cost is the one a one-action example predicts
        # (tests/bandit/test_vw_policy.py). The link is _link's on a one-element array:
        # numpy's tanh there, the elementwise steps (exact in Python too) as scalars.
        if self.learns_hazard or raw is None:
            return None
        if len(raw) > 2:  # noqa: PLR2004 (the expected rewards choose() computed: the same
            # operations; numpy's tanh of an element does not depend on the array around it)
            return float(raw[2][index])
        score = 0.0 - float(raw[0][index])
        if self.loss == "squared":
            return score
        return 0.5 * (1.0 + float(np.tanh(np.asarray([0.5 * score]))[0]))

    def _link(self, scores: np.ndarray) -> np.ndarray:
        """Linear predictor -> expected reward (identity, or the logistic function)."""
        if self.loss == "squared":
            return scores
        linked: np.ndarray = 0.5 * (1.0 + np.tanh(0.5 * scores))  # = 1 / (1 + exp(-s))
        return linked

    def _label(self, reward: float) -> float:
        """The "reward" written on the VW line: the reward, or +-1 for the logistic loss."""
        if self.loss == "squared":
            return reward
        if reward not in (0.0, 1.0):
            msg = f"loss='logistic' learns 0/1 rewards, got {reward!r} (use loss='squared')"
            raise InvalidInputError(msg)
        return 2.0 * reward - 1.0

    def _pmf(
        self, context: Features, actions: Sequence[Action], expected: np.ndarray
    ) -> np.ndarray:
        if len(actions) == 1:
            return np.ones(1)
        costs = -expected
        if self.optimism > 0:
            costs = costs - self.optimism * self._family_uncertainty(actions)
        if self.family_calibration > 0:
            codes = self._family_code_array(actions)
            costs = costs + np.asarray(self._family_corrections(self._family_index))[codes]
        if self.exploration == "squarecb":
            gamma = squarecb_gamma(
                self.gamma_scale, self.gamma_exponent, len(actions), self.learning_steps
            )
            return squarecb_pmf(costs, gamma)
        if self.exploration == "epsilon":
            return epsilon_greedy_pmf(costs, self.epsilon)
        assert self._explorer is not None  # noqa: S101 (set for every other exploration)
        return np.asarray(self._explorer.predict(self._example(context, actions)), dtype=float)

    @property
    def learning_steps(self) -> float:
        """``t`` of SquareCB's ``gamma``: outcomes learned (hazard: citizen-weeks / 10)."""
        return self.n_updates / 10.0 if self.learns_hazard else float(self.n_updates)

    def _learn(
        self,
        context: Features,
        actions: Sequence[Action],
        index: int,
        propensity: float,
        reward: float,
    ) -> None:
        if self.learns_hazard:
            msg = "A hazard VWPolicy learns citizen-weeks: use learn_at_risk()"
            raise InvalidInputError(msg)
        # The regression oracle learns the labelled offer's line only, unweighted.
        memo = self._choice_memo
        if memo is not None and memo[0].context is context and memo[2] is not None:
            shared = memo[2][1]  # the shared line the choice was scored with
        else:
            shared = self._shared.line(context)
        line = self._lines.line(actions[index])
        label = self._label(reward)
        cache = self._labelled
        text = cache.get((line, label))
        if text is None:
            if len(cache) >= _MAX_LABELLED:
                cache.clear()
            text = cache[line, label] = labelled(line, label, 1.0)
        self._scorer.learn_text(f"{shared}\n{text}")
        if self._explorer is not None:
            cb_label = (index, label, propensity)
            self._explorer.learn(self._example(context, actions, label=cb_label))

    def learn_at_risk(self, context: Features, action: Action, week: int, *, job: bool) -> None:
        """Learn one citizen-week at risk: week ``week`` after the decision, job found or not.

        Call it for every week the citizen was known to be without a job (``job=False``) and
        once for the week the job started (``job=True``).
        """
        if not self.learns_hazard:
            msg = "learn_at_risk needs target='hazard'"
            raise InvalidInputError(msg)
        if not 0 <= week < self.horizon_weeks:
            msg = f"week must be in 0..{self.horizon_weeks - 1}, got {week}"
            raise InvalidInputError(msg)
        shared = f"{self._shared.line(context)} {self._time_line(week)}"
        line = f"{self._lines.line(action)} {_phase_line(action, week)}"
        label = (0, self._label(1.0 if job else 0.0), 1.0)
        self._scorer.learn(build_example(shared, [line], label=label))
        self.n_updates += 1

    # ------------------------------------------------------------------ hazard helpers

    def _bucket(self, week: int) -> int:
        return int(np.searchsorted(self.hazard_buckets, week, side="right")) - 1

    def _time_line(self, week: int) -> str:
        """The time namespace of week ``week`` (``0 <= week < H``), one string per week made
        once: the bucket search cost about 5 us of a 30 us citizen-week update."""
        lines: list[str] | None = self.__dict__.get("_time_lines")
        if lines is None:
            lines = [f"|{TIME_NAMESPACE} b{self._bucket(w)}" for w in range(self.horizon_weeks)]
            self._time_lines = lines
        return lines[week]

    def _time_parts(self, actions: Sequence[Action]) -> np.ndarray:
        """``g(t, a)`` per action and week ``t < H``, shape ``(len(actions), H)``, cached per
        model state: the time bucket (``t``, crossed with the offer) and the programme phase
        of that week for that offer (namespace ``p``: during the programme, its last week --
        when a wage-subsidy employer hires -- or after it; crossed with the family)."""
        if self._time_cache_state != self.n_updates:
            self._time_rows.clear()
            self._time_cache_state = self.n_updates
        rows = self._time_rows
        missing = [a for a in actions if a.id not in rows]
        if missing:
            lines = self._lines.lines(missing)
            # Costs (= -linear predictor) with no features but the offer, then per week.
            empty = np.asarray(self._scorer.predict([f"shared |{TIME_NAMESPACE}", *lines]))
            parts = []
            for week in range(self.horizon_weeks):
                phased = [
                    f"{line} {_phase_line(a, week)}" for a, line in zip(missing, lines, strict=True)
                ]
                example = [f"shared {self._time_line(week)}", *phased]
                parts.append(empty - np.asarray(self._scorer.predict(example)))
            table = np.stack(parts, axis=1)
            start = len(rows)
            if start + len(missing) > self._time_table.shape[0]:
                grown = np.zeros((2 * (start + len(missing)), self.horizon_weeks))
                grown[:start] = self._time_table[:start]
                self._time_table = grown
            self._time_table[start : start + len(missing)] = table
            for j, action in enumerate(missing):
                rows[action.id] = start + j
        index = np.fromiter((rows[a.id] for a in actions), dtype=np.intp, count=len(actions))
        result: np.ndarray = self._time_table[index]
        return result

    def _job_probability(self, context_scores: np.ndarray, actions: Sequence[Action]) -> np.ndarray:
        """``1 - prod_t (1 - h_t)`` from ``f(x, a)`` and the cached ``g(t, a)``, ``t < H``."""
        linear = context_scores[:, None] + self._time_parts(actions)
        hazards = np.clip(self._link(linear), *_HAZARD_CLIP)
        prob: np.ndarray = -np.expm1(np.log1p(-hazards).sum(axis=1))
        return prob

    # ------------------------------------------------------------------ persistence

    def _dump_state(self) -> bytes:
        scorer = self._scorer.to_bytes()
        explorer = b"" if self._explorer is None else self._explorer.to_bytes()
        return _LEN.pack(len(scorer)) + scorer + explorer

    def _load_state(self, payload: bytes) -> None:
        if len(payload) < _LEN.size:
            msg = "VW policy payload is truncated"
            raise ModelFormatError(msg)
        (n,) = _LEN.unpack_from(payload)
        scorer, explorer = payload[_LEN.size : _LEN.size + n], payload[_LEN.size + n :]
        if len(scorer) != n or (self._explorer is None) != (not explorer):
            msg = "VW policy payload does not match the policy's exploration"
            raise ModelFormatError(msg)
        self.close()
        self._scorer = VWLearner(self._scorer_args(), model=scorer)
        if explorer:
            self._explorer = VWLearner(self._explorer_args(), model=explorer)
        self._time_rows.clear()
        self._time_cache_state = -1

    def close(self) -> None:
        """Finish the VW workspaces now (they are also finished when the policy is collected)."""
        self._scorer.close()
        if self._explorer is not None:
            self._explorer.close()

    def __reduce__(self) -> tuple[Callable[[bytes], Self], tuple[bytes]]:
        """Pickle through the snapshot format (VW workspaces are not picklable)."""
        return type(self).from_bytes, (self.to_bytes(),)


PHASE_NAMESPACE = "p"


def _phase_line(action: Action, week: int) -> str:
    """The programme phase of ``week`` for ``action``: ``during``, ``end`` or ``after``.

    Examples
    --------
    >>> from bandit.types import Action
    >>> [_phase_line(Action("x", {"length_weeks": 2}), w) for w in (0, 2, 5)]
    ['|p during', '|p end', '|p after']
    """
    raw = action.features.get("length_weeks", 1)
    length = int(raw) if isinstance(raw, (int, float)) else 1
    phase = "during" if week < length else ("end" if week == length else "after")
    return f"|{PHASE_NAMESPACE} {phase}"


def _finite(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positive(x: object) -> bool:
    return _finite(x) and float(x) > 0  # type: ignore[arg-type]


def _is_interaction(q: object) -> bool:
    return isinstance(q, str) and len(q) >= 2 and q.isalpha()  # noqa: PLR2004


class _RoundState:
    """Per action set and scorer: the parsed action examples (once needed), each action's family as an
    index into ``families`` (the set's families), and the floor's spread
    ``floor * w / sum(w)`` over the actions (``None``: ``floor / K`` each)."""

    __slots__ = ("codes", "examples", "families", "scorer", "spread")

    def __init__(
        self,
        *,
        scorer: VWLearner,
        examples: list[Any] | None,
        families: list[str],
        codes: list[int],
        spread: list[float] | None,
    ) -> None:
        self.scorer = scorer
        self.examples = examples
        self.families = families
        self.codes = codes
        self.spread = spread
