"""Our IPS, SNIPS and DR equal Open Bandit Pipeline 0.5.7's on the same arrays (to 1e-9).

The OBP values are checked in (``reference/obp_reference.json``) with the arrays they were
computed on (``reference/obp_reference.npz``); ``reference/make_obp_reference.py`` regenerates
both with OBP in a separate Python 3.10 venv. This test needs no OBP.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from offline_eval.estimators import IPS, SNIPS, DoublyRobust
from offline_eval.logs import LoggedBandit
from offline_eval.reward_model import PrecomputedRewards

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def reference():
    arrays = dict(np.load(REF / "obp_reference.npz"))
    values = json.loads((REF / "obp_reference.json").read_text())
    n, k = arrays["target"].shape
    logs = LoggedBandit(
        context=np.zeros((n, 1)),
        action=arrays["action"].astype(np.int64),
        reward=arrays["reward"],
        propensity=arrays["propensity"],
        n_actions=k,
    )
    return logs, arrays, values


@pytest.mark.parametrize("name", ["ips", "snips", "dr"])
def test_matches_obp(reference, name):
    logs, arrays, values = reference
    estimator = {
        "ips": IPS(),
        "snips": SNIPS(),
        "dr": DoublyRobust(PrecomputedRewards(arrays["q_hat"])),
    }[name]
    ours = estimator.estimate(logs, arrays["target"]).value
    assert values["obp_version"] == "0.5.7"
    assert ours == pytest.approx(values[name], abs=1e-9, rel=0)
