"""VWPolicy beyond the conformance suite: VW-equivalent exploration, params, persistence."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from bandit.errors import InvalidInputError, ModelFormatError
from bandit.policies import policy_from_bytes
from bandit.policies.vw_policy import VWPolicy, epsilon_greedy_pmf, squarecb_gamma, squarecb_pmf
from bandit.vw.examples import ActionLineCache, build_example, format_shared
from bandit.vw.workspace import VWLearner
from tests.helpers.contexts import catalog_actions, citizen


def _stream(n: int, n_logged: int = 6) -> list[tuple[dict[str, object], int, float, float]]:
    """Contexts with logged (action index < n_logged, reward, propensity 1/6) triples."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        ctx = citizen(weeks_unemployed=int(rng.integers(0, 60)), age=20 + i % 40).features()
        out.append((ctx, int(rng.integers(0, n_logged)), float(rng.random() < 0.4), 1 / 6))
    return out


@pytest.mark.parametrize(
    ("gamma_scale", "epsilon", "vw_flags"),
    [
        (10.0, None, ["--squarecb"]),
        (3.0, None, ["--squarecb", "--gamma_scale", "3"]),
        (None, 0.1, ["--epsilon", "0.1"]),
    ],
)
def test_pmf_rules_match_vw_cb_explore_adf(
    gamma_scale: float | None, epsilon: float | None, vw_flags: list[str]
) -> None:
    """Our SquareCB and epsilon-greedy rules equal VW's ``--cb_explore_adf`` on VW's scores.

    A ``--cb_adf`` scorer and a ``--cb_explore_adf`` workspace learn the same mtr regression
    from the same stream, so our rule applied to the scorer's costs must give VW's pmf, with
    VW's own ``gamma = gamma_scale * t ** 0.5`` (our policy adds ``sqrt(K)`` to it, see
    :func:`squarecb_gamma`). The two differ only by float32 rounding inside VW (~1e-7): 1e-4
    absolute is far above that and far below any real gap. VW 9's squarecb keeps importance
    weights on the LAST action line, so the stream logs only the first 5 of 6 actions.
    """
    actions = catalog_actions(6)
    cache = ActionLineCache()
    common = ["--cb_type", "mtr", "-q", "ca", "--quiet", "--learning_rate", "0.5"]
    common += ["--random_seed", "4"]
    explore_args = ["--cb_explore_adf", *vw_flags, *common]
    with VWLearner(explore_args) as reference, VWLearner(["--cb_adf", *common]) as scorer:
        for i, (ctx, index, reward, p) in enumerate(_stream(120, n_logged=5)):
            example = build_example(format_shared(ctx), cache.lines(actions))
            if i % 10 == 0 and i > 0:
                costs = np.asarray(scorer.predict(example))
                if gamma_scale is not None:
                    ours = squarecb_pmf(costs, gamma_scale * i**0.5)
                else:
                    assert epsilon is not None
                    ours = epsilon_greedy_pmf(costs, epsilon)
                theirs = np.asarray(reference.predict(example))
                np.testing.assert_allclose(ours, theirs / theirs.sum(), atol=1e-4)
            label = (index, reward, 1.0 if gamma_scale is not None else p)
            labelled = build_example(format_shared(ctx), cache.lines(actions), label=label)
            reference.learn(labelled)
            scorer.learn(labelled)


def test_policy_gamma_grows_with_the_action_set() -> None:
    """At K = 330 and 10,000 outcomes the pmf concentrates where VW's K-free gamma would not."""
    costs = np.zeros(330)
    costs[1:] = 0.05  # every other offer 5 pp worse
    ours = squarecb_pmf(costs, squarecb_gamma(10.0, 0.5, 330, 10_000))
    vw_default = squarecb_pmf(costs, 10.0 * 10_000**0.5)
    assert ours[0] > 0.25 > vw_default[0]


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"exploration": "ucb"}, "exploration must be one of"),
        ({"gamma_scale": 0.0}, "gamma_scale"),
        ({"gamma_scale": float("inf")}, "gamma_scale"),
        ({"epsilon": 1.5}, "epsilon"),
        ({"cover": 0}, "cover"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"bits": 40}, "bits"),
        ({"interactions": ("c a",)}, "interactions"),
        ({"floor": 2.0}, "floor"),
    ],
)
def test_invalid_params_are_rejected(params: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        VWPolicy(**params)  # type: ignore[arg-type]


def _trained(**params: object) -> VWPolicy:
    policy = VWPolicy(seed=2, **params)  # type: ignore[arg-type]
    actions = catalog_actions(10)
    for i, (ctx, _, reward, _) in enumerate(_stream(40)):
        policy.learn(policy.choose(ctx, actions, event_id=f"t{i}"), reward)
    return policy


@pytest.mark.parametrize("exploration", ["squarecb", "regcb"])
def test_pickle_goes_through_the_snapshot(exploration: str) -> None:
    policy = _trained(exploration=exploration)
    clone = pickle.loads(pickle.dumps(policy))  # noqa: S301 (our own bytes)
    ctx, actions = citizen().features(), catalog_actions(10)
    np.testing.assert_allclose(
        clone.probabilities(ctx, actions), policy.probabilities(ctx, actions), atol=1e-7
    )
    assert clone.model_version == policy.model_version


def test_snapshot_of_another_exploration_is_rejected() -> None:
    data = _trained(exploration="regcbopt").to_bytes()
    header, _, payload = data.partition(b"\n")
    with pytest.raises(ModelFormatError, match="exploration"):
        VWPolicy(exploration="squarecb")._load_state(payload)
    with pytest.raises(ModelFormatError, match="truncated"):
        VWPolicy()._load_state(b"\x00")
    assert policy_from_bytes(data).get_params()["exploration"] == "regcbopt"


def test_squarecb_explores_less_as_it_learns() -> None:
    """gamma grows like sqrt(t), so the best action's probability rises with training."""
    fresh = VWPolicy(floor=0.0, seed=1)
    ctx, actions = citizen().features(), catalog_actions(10)
    assert np.allclose(fresh.probabilities(ctx, actions), 0.1)  # t = 0: uniform
    trained = _trained(floor=0.0)
    assert trained.probabilities(ctx, actions).max() > 0.3


def test_close_is_idempotent() -> None:
    policy = VWPolicy(exploration="cover", cover=2)
    policy.close()
    policy.close()
    assert policy._scorer.closed


def test_tiny_and_non_finite_feature_values() -> None:
    """A denormal-sized demand index once made VW's estimates NaN; non-finite ones are refused."""
    policy = VWPolicy(seed=3)
    actions = catalog_actions(5)
    tiny = citizen(labour_demand_index=1.842664365234275e-174).features()
    for i in range(20):
        d = policy.choose(tiny, actions, event_id=f"t{i}")
        assert all(math.isfinite(r) for r in d.expected_rewards)
        policy.learn(d, float(i % 2))
    est = policy.estimates(tiny, actions)
    assert all(math.isfinite(e.mean) for e in est)
    with pytest.raises(InvalidInputError, match="finite number"):
        policy.choose({"x": float("nan")}, actions, event_id="nan")
