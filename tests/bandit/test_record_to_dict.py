"""``DecisionRecord.to_dict`` is written out by hand for speed: it must equal the reflective form.

The reference below is the original field-by-field conversion over ``dataclasses.fields``;
comparing against it also catches a new record field that ``to_dict`` forgot.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from bandit.control import Group
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus


def reflective_dict(record: DecisionRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        if isinstance(value, Group):
            value = value.value
        elif isinstance(value, Outcome):
            value = {
                "status": value.status.value,
                "weeks_to_job": value.weeks_to_job,
                "weeks_observed": value.weeks_observed,
            }
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


TREATMENT = DecisionRecord(
    event_id="e1",
    timestamp=1700000000.123456,
    citizen_key="p_" + "a" * 64,
    group=Group.TREATMENT,
    context={"age": 30, "education": "bachelor", "cv_welding": 1.0, "single_parent": False},
    eligible=("A", "B", "C"),
    pmf=(0.2, 0.30000000000000004, 0.5),
    recommended="B",
    propensity=0.30000000000000004,
    model_version="vw-abc-00000012",
    policy="vw",
    experiment="exp-1",
    excluded={"D": "too_early", "E": "capacity"},
)
CONTROL = DecisionRecord(
    event_id="e2",
    timestamp=5.0,
    citizen_key="p_" + "b" * 64,
    group=Group.CONTROL,
    context={},
    eligible=("A",),
    pmf=(),
    recommended=None,
    propensity=None,
    model_version="practice-x-00000000",
    policy="practice",
)
SETTLED = TREATMENT.with_assignment("C", "capacity").with_outcome(
    Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=7.5), 1.0, censored=False
)
CENSORED = TREATMENT.with_outcome(
    Outcome(OutcomeStatus.DROPOUT, weeks_observed=3.0), None, censored=True
)


@pytest.mark.parametrize("record", [TREATMENT, CONTROL, SETTLED, CENSORED])
def test_to_dict_equals_the_reflective_conversion(record: DecisionRecord) -> None:
    fast = record.to_dict()
    slow = reflective_dict(record)
    assert fast == slow
    assert list(fast) == list(slow)  # same key order, for writers that do not sort keys
    for compact in (True, False):
        kwargs: dict[str, Any] = {"sort_keys": compact}
        if compact:
            kwargs["separators"] = (",", ":")
        assert json.dumps(fast, **kwargs) == json.dumps(slow, **kwargs)
    assert DecisionRecord.from_dict(fast) == record


def test_to_dict_copies_the_containers() -> None:
    out = TREATMENT.to_dict()
    assert type(out["eligible"]) is list and type(out["pmf"]) is list
    assert type(out["context"]) is dict and out["context"] is not TREATMENT.context
    assert out["excluded"] is not TREATMENT.excluded
