"""The request hot path's fast helpers agree with the straightforward forms they replaced."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bandit.catalog import default_catalog
from bandit.engine import top_indices
from service.capacity import CapacityTracker
from service.guard import _has_non_finite
from service.guard import body_headers as _body_headers
from service.store.sqlite_capacity import SQLiteSeatLedger


def _slow_has_non_finite(body: bytes) -> bool:
    def reject(name: str) -> None:
        raise OverflowError(name)

    try:
        json.loads(body, parse_constant=reject)
    except OverflowError:
        return True
    except ValueError:
        return False
    return False


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": [1, -Infinity]}',
        '{"a": "NaN", "b": "Infinity"}',
        '{"a": 1.5e308}',
        '{"a": 1}',
        "{not json NaN",
        "",
        "[]",
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_non_finite_check_matches_a_full_parse(text: str, encoding: str) -> None:
    body = text.encode(encoding)
    assert _has_non_finite(body) == _slow_has_non_finite(body)


def test_non_finite_check_really_detects_utf16_constants() -> None:
    # The fast path skips the parse only for bodies without NUL bytes; UTF-16 JSON has them.
    assert _has_non_finite('{"a": NaN}'.encode("utf-16"))


def test_body_headers_last_one_wins_and_names_are_case_insensitive() -> None:
    raw = [
        (b"content-type", b"text/plain"),
        (b"Content-Length", b"10"),
        (b"x-content-length", b"99"),
        (b"CONTENT-TYPE", b"application/json"),
    ]
    assert _body_headers(raw) == ("10", "application/json")
    assert _body_headers([]) == ("", "")


def test_top_indices_equals_sorting_everything() -> None:
    rng = np.random.default_rng(7)
    for trial in range(200):
        n = int(rng.integers(1, 60))
        # coarse values so that ties are common and broken by id
        pmf = [float(v) for v in rng.integers(0, 5, size=n) / 10.0]
        ids = [f"a{int(v):03d}" for v in rng.permutation(n)]
        k = int(rng.integers(1, 25))
        slow = sorted(range(n), key=lambda i: (-pmf[i], ids[i]))[:k]
        assert top_indices(pmf, ids, k) == slow, trial


def test_integer_tie_keys_order_as_the_padded_strings_did() -> None:
    """The shortlist's tie keys ``(j * step + offset) mod p`` are integers below ``p`` =
    1,000,003 (seven digits): they order exactly as their zero-padded 7-digit strings, which
    the shortlist used before, at the largest keys too."""
    from service.decide import _TIE_PRIME

    rng = np.random.default_rng(11)
    for trial in range(200):
        n = int(rng.integers(1, 400))
        step = int(rng.integers(1, _TIE_PRIME))
        offset = int(rng.choice([0, _TIE_PRIME - 1, int(rng.integers(0, _TIE_PRIME))]))
        keys = ((np.arange(n, dtype=np.int64) * step + offset) % _TIE_PRIME).tolist()
        padded = [f"{key:07d}" for key in keys]
        pmf = [float(v) for v in rng.integers(0, 3, size=n) / 10.0]  # mostly ties
        k = int(rng.integers(1, 12))
        assert top_indices(pmf, keys, k) == top_indices(pmf, padded, k), trial
        assert sorted(range(n), key=keys.__getitem__) == sorted(range(n), key=padded.__getitem__)


def test_capacity_seats_left_tracks_takes_and_returns_a_copy(tmp_path: Path) -> None:
    catalog = default_catalog()
    cap = CapacityTracker(catalog, SQLiteSeatLedger(tmp_path / "seats.sqlite3"))
    limited = [i for i in catalog if i.capacity is not None]
    assert limited
    expected = {i.id: i.capacity for i in limited}
    assert cap.seats_left() == expected
    first, second = limited[0].id, limited[-1].id
    for k in range(3):
        cap.take(f"e{k}", first)
    cap.take("e3", second)
    cap.take("e4", "not-a-capacity-offer")
    expected[first] = (expected[first] or 0) - 3
    expected[second] = (expected[second] or 0) - 1
    snapshot = cap.seats_left()
    assert snapshot == expected
    snapshot[first] = 1000  # the caller's copy, not the tracker's state
    assert cap.seats_left()[first] == expected[first]
    cap.close()


def test_options_reuse_the_decisions_own_scores(tmp_path: Path) -> None:
    """The shortlist's explanation and cost-benefit take the decision's own scores (the
    estimates of its offers and the equity gate's estimate of the baseline) instead of asking
    the model again: the same numbers bit for bit, and only the varied facts cost model calls.
    """
    from bandit.context import CitizenContext
    from bandit.control import Group
    from bandit.costs import baseline_action_id, option_costs
    from bandit.explain import DRIVER_FEATURES, REFERENCE_FACTS, drivers, feature_effects_many
    from bandit.policies.vw_policy import VWPolicy
    from service.app import _open_runtime
    from service.config import Settings
    from service.decide import _new_record, build_options
    from service.schemas import RecommendationRequest
    from tests.helpers.contexts import citizen

    settings = Settings(
        policy="vw", store="sqlite", sqlite_path=str(tmp_path / "nbi.sqlite3"), learning="worker"
    )
    runtime = _open_runtime(settings)
    try:
        policy = runtime.policy.get()
        assert isinstance(policy, VWPolicy)
        assert policy.learns_hazard
        assert runtime.equity is not None  # the default capacity has scarce seats to reserve
        catalog = runtime.catalog
        actions = [item.as_action() for item in catalog]
        rng = np.random.default_rng(5)
        for t in range(6000):  # a model whose estimates differ between offers and citizens
            weeks = int(rng.integers(0, 80))
            ctx = citizen(weeks_unemployed=weeks).features()
            rate = 0.2 * (t % 3 == 0) / (1.0 + weeks / 10.0) + 0.01
            policy.learn_at_risk(ctx, actions[t % 60], t % 26, job=bool(rng.random() < rate))
        for _ in range(500):  # settled outcomes: the shown estimates follow the model's
            policy.track_error(0.6, float(rng.random() < 0.6))
        base_id = baseline_action_id(catalog)
        assert base_id is not None
        context = citizen(weeks_unemployed=30, education="bachelor")
        assert isinstance(context, CitizenContext)
        request = RecommendationRequest.model_validate(
            {"citizen_id": "c-1", "context": json.loads(context.model_dump_json())}
        )
        features = context.features()
        decided = _new_record(runtime, policy, request, features, "k", Group.TREATMENT, None)
        decision = decided.decision
        assert decision is not None
        assert decided.need_score is not None
        # the invariant the reuse rests on: an offer's estimate depends on it and the context only
        ids = list(decision.action_ids)
        some = [ids[i] for i in (3, 0, len(ids) - 1, 7)]
        fresh = policy.estimates_of(features, [catalog.action(i) for i in some]).tolist()
        assert fresh == [decision.expected_rewards[ids.index(i)] for i in some]
        assert decided.need_score == policy.estimate_of(features, catalog.action(base_id))
        assert decided.need_score == decision.expected_rewards[ids.index(base_id)]  # 1 vs K rows
        assert len(set(decision.expected_rewards)) > len(ids) // 2  # not a flat model

        calls = [0]
        predict = policy._expected_rewards  # noqa: SLF001

        def counted(ctx: object, acts: object) -> object:
            calls[0] += 1
            return predict(ctx, acts)  # type: ignore[arg-type]

        policy._expected_rewards = counted  # type: ignore[method-assign]  # noqa: SLF001
        record = decided.record
        reused = build_options(
            runtime, policy, record, features, 4, decision.expected_rewards, decided.need_score
        )
        varied = [
            n
            for n in DRIVER_FEATURES
            if n in features and (REFERENCE_FACTS[n] is None or features[n] != REFERENCE_FACTS[n])
        ]
        assert calls[0] == len(varied)  # one call per varied fact, none for the base or baseline
        assert any(o.benefit_days_saved is not None for o in reused)
        # ... and the same numbers as asking the model again
        shown = [catalog.action(o.action_id) for o in reused]
        own = [decision.expected_rewards[ids.index(a.id)] for a in shown]
        estimate = lambda ctx: policy.estimates_of(ctx, shown).tolist()  # noqa: E731
        effects = feature_effects_many(estimate, features, len(shown))
        assert feature_effects_many(estimate, features, len(shown), base=own) == effects
        for option, effect, action in zip(reused, effects, shown, strict=True):
            item = catalog.get(action.id)
            told = drivers(features, item.family.value, item.sector, effects=effect)
            assert option.drivers == list(told)  # each option's drivers from its own effects
        estimates = policy.estimates(features, shown, raw=own)
        costs = {
            raw: option_costs(
                policy,
                catalog,
                features,
                shown,
                estimates,
                horizon_weeks=26,
                daily_rate_dkk=360.0,
                baseline_raw=raw,
            )
            for raw in (decided.need_score, None)
        }
        assert costs[decided.need_score] == costs[None]
        assert [o.net_value_dkk for o in reused] == [
            None if c is None else round(c.net_value_dkk, 2) for c in costs[None]
        ]
        # a shortlist without the baseline takes it from the need score: still no extra call
        restricted = RecommendationRequest.model_validate(
            {
                **request.model_dump(mode="json"),
                "eligible_action_ids": [i for i in ids if i != base_id][5:8],
            }
        )
        decided = _new_record(runtime, policy, restricted, features, "k", Group.TREATMENT, None)
        assert decided.decision is not None
        assert base_id not in decided.record.eligible
        calls[0] = 0
        build_options(
            runtime,
            policy,
            decided.record,
            features,
            4,
            decided.decision.expected_rewards,
            decided.need_score,
        )
        assert calls[0] == len(varied)
    finally:
        runtime.decision_pool.shutdown()
        runtime.capacity.close()
        runtime.store.close()
