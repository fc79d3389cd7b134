from __future__ import annotations

import math

import pytest

from bandit.catalog import Family, default_catalog
from bandit.context import CitizenContext, ProtectedAttributes
from bandit.eligibility import filter_eligible
from bandit.errors import InvalidContextError, NoEligibleActionError, SensitiveDataError
from tests.helpers.contexts import citizen


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"age": 12}, r"age: Input should be greater than or equal to 16"),
        ({"age": "old"}, r"age: Input should be a valid integer"),
        (
            {"target_group": "pension"},
            r"target_group: Input should be 'dagpenge' or 'kontanthjaelp'",
        ),
        ({"weeks_unemployed": -1}, r"weeks_unemployed: Input should be greater than or equal to 0"),
        (
            {"labour_demand_index": math.nan},
            r"labour_demand_index: Input should be a finite number",
        ),
        ({"favourite_colour": "red"}, r"favourite_colour: Extra inputs are not permitted"),
    ],
)
def test_invalid_context_gives_precise_error(override: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidContextError, match=message):
        citizen(**override)


def test_cpr_like_cv_token_rejected_without_echoing_it() -> None:
    with pytest.raises(SensitiveDataError, match="cv_tokens") as info:
        citizen(cv_tokens=("welding", "010190-1234"))
    assert "010190" not in str(info.value)
    with pytest.raises(SensitiveDataError, match="looks like a CPR number"):
        CitizenContext.from_mapping({**citizen().model_dump(), "cv_tokens": ("0101901234",)})


def test_protected_attributes_are_not_features() -> None:
    c = citizen()
    prot = ProtectedAttributes.from_mapping({"gender": "female", "origin": "non_western"})
    assert not any(k.startswith("protected") or k in {"gender", "origin"} for k in c.features())
    assert prot.as_features() == {"protected_gender": "female", "protected_origin": "non_western"}
    with pytest.raises(InvalidContextError, match="origin"):
        ProtectedAttributes.from_mapping({"origin": "martian"})


def families(result_ids: tuple[str, ...]) -> set[Family]:
    cat = default_catalog()
    return {cat.get(i).family for i in result_ids}


def test_wage_subsidy_needs_26_weeks_unless_exception() -> None:
    cat = default_catalog()
    early = filter_eligible(cat, citizen(weeks_unemployed=4, education="bachelor", age=35))
    assert Family.PRIVATE_WAGE_SUBSIDY not in families(early.eligible_ids)
    assert set(early.excluded.values()) >= {"too_early"}
    late = filter_eligible(cat, citizen(weeks_unemployed=30, education="bachelor", age=35))
    assert Family.PRIVATE_WAGE_SUBSIDY in families(late.eligible_ids)
    for exception in ({"education": "lower_secondary"}, {"age": 55}, {"single_parent": True}):
        early_ok = filter_eligible(
            cat, citizen(weeks_unemployed=4, **{"education": "bachelor", **exception})
        )
        assert Family.PUBLIC_WAGE_SUBSIDY in families(early_ok.eligible_ids), exception


def test_six_week_course_rules() -> None:
    cat = default_catalog()
    ok = filter_eligible(cat, citizen(weeks_unemployed=10, education="vocational", age=30))
    assert Family.SIX_WEEK_COURSE in families(ok.eligible_ids)
    too_early = filter_eligible(cat, citizen(weeks_unemployed=2, education="vocational"))
    assert Family.SIX_WEEK_COURSE not in families(too_early.eligible_ids)
    educated = filter_eligible(cat, citizen(weeks_unemployed=10, education="master"))
    assert Family.SIX_WEEK_COURSE not in families(educated.eligible_ids)
    young_late = filter_eligible(cat, citizen(weeks_unemployed=30, education="vocational", age=22))
    assert Family.SIX_WEEK_COURSE not in families(young_late.eligible_ids)
    kh = filter_eligible(cat, citizen(target_group="kontanthjaelp", weeks_unemployed=10))
    assert Family.SIX_WEEK_COURSE not in families(kh.eligible_ids)


def test_capacity_and_requested_subset() -> None:
    cat = default_catalog()
    ids = cat.ids[:3]
    result = filter_eligible(cat, citizen(), restrict_to=ids, seats_left={ids[0]: 0})
    assert ids[0] not in result.eligible_ids
    assert result.excluded[ids[0]] == "capacity"
    assert set(result.eligible_ids) <= set(ids[1:])
    with pytest.raises(NoEligibleActionError, match=r"No eligible intervention .*capacity: 1"):
        filter_eligible(cat, citizen(), restrict_to=ids[:1], seats_left={ids[0]: 0})


def test_memoised_filter_equals_the_rule_by_rule_filter() -> None:
    """The cached fast path (catalog, no shortlist) gives exactly the per-offer evaluation."""
    import numpy as np

    from bandit.catalog import default_catalog
    from bandit.eligibility import RuleFacts, _filter_slow, filter_eligible
    from tests.helpers.contexts import citizen

    catalog = default_catalog()
    rng = np.random.default_rng(3)
    for trial in range(60):
        ctx = citizen(weeks_unemployed=int(rng.integers(0, 80)), age=int(rng.integers(18, 67)))
        seats = {item.id: int(rng.integers(-1, 3)) for item in catalog if rng.random() < 0.5}
        fast = filter_eligible(catalog, ctx, seats_left=seats)
        items, reasons = _filter_slow(catalog, RuleFacts.of(ctx), seats, None)
        assert fast.eligible_ids == tuple(i.id for i in items), trial
        assert dict(fast.excluded) == reasons, trial


def test_memoised_filter_with_a_shortlist_equals_the_rule_by_rule_filter() -> None:
    """With the case system's shortlist the cached path gives the per-offer evaluation exactly:
    the same eligible offers, the same reasons, in the same catalog order."""
    import numpy as np

    from bandit.catalog import default_catalog
    from bandit.eligibility import RuleFacts, _filter_slow, filter_eligible
    from bandit.errors import NoEligibleActionError
    from tests.helpers.contexts import citizen

    catalog = default_catalog()
    ids = [item.id for item in catalog]
    rng = np.random.default_rng(5)
    compared = 0
    for trial in range(80):
        ctx = citizen(weeks_unemployed=int(rng.integers(0, 80)), age=int(rng.integers(18, 67)))
        seats = {i: int(rng.integers(-1, 3)) for i in ids if rng.random() < 0.5}
        share = float(rng.choice([0.02, 0.2, 0.9]))
        shortlist = [i for i in ids if rng.random() < share] + ["not-in-catalog"]
        items, reasons = _filter_slow(catalog, RuleFacts.of(ctx), seats or None, set(shortlist))
        if not items:
            with pytest.raises(NoEligibleActionError):
                filter_eligible(catalog, ctx, seats_left=seats, restrict_to=shortlist)
            continue
        fast = filter_eligible(catalog, ctx, seats_left=seats, restrict_to=shortlist)
        assert fast.eligible_ids == tuple(i.id for i in items), trial
        assert list(fast.excluded.items()) == list(reasons.items()), trial
        compared += 1
    assert compared > 40  # noqa: PLR2004 (most trials leave something eligible)
