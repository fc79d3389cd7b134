"""GET /v1/experiment/summary counts only outcomes known at the analysis date."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.control import Group
from bandit.records import DecisionRecord
from bandit.rewards import Outcome, OutcomeStatus
from service.summary import WEEK_SECONDS, newcombe
from tests.helpers.api import RESEARCHER

H, LAG = 26, 6
JOB = Outcome(OutcomeStatus.EMPLOYED, weeks_to_job=3.0)
NO_JOB = Outcome(OutcomeStatus.UNEMPLOYED_AT_HORIZON)


def _put(store: Any, i: int, group: Group, age_weeks: float, outcome: Outcome | None) -> None:
    record = DecisionRecord(
        event_id=f"e{i:04d}",
        timestamp=time.time() - age_weeks * WEEK_SECONDS,
        citizen_key=f"c{i}",
        group=group,
        context={},
        eligible=("a",),
        pmf=(1.0,) if group is Group.TREATMENT else (),
        recommended="a" if group is Group.TREATMENT else None,
        propensity=1.0 if group is Group.TREATMENT else None,
        model_version="m",
        policy="p",
    )
    store.put_decision(record, horizon_seconds=H * WEEK_SECONDS)
    if outcome is not None:
        reward = 1.0 if outcome.status is OutcomeStatus.EMPLOYED else 0.0
        store.record_outcome(record.event_id, outcome, reward, censored=False)


@pytest.mark.parametrize("simulated_time", [False, True])
def test_only_decisions_older_than_horizon_plus_lag_count(
    tmp_path: Path, settings: Any, simulated_time: bool
) -> None:
    from service.app import create_app

    settings = settings.model_copy(
        update={"report_lag_weeks": float(LAG), "simulated_time": simulated_time}
    )
    with TestClient(create_app(settings)) as client:
        store = client.app.state.runtime.store
        i = 0
        # Known at the analysis date (decided 40 weeks ago): treatment 6/10, control 3/10.
        for group, jobs in ((Group.TREATMENT, 6), (Group.CONTROL, 3)):
            for k in range(10):
                i += 1
                _put(store, i, group, 40, JOB if k < jobs else NO_JOB)
        # Past the horizon but inside the register lag (29 weeks): not known yet.
        i += 1
        _put(store, i, Group.CONTROL, 29, NO_JOB)
        # Young treatment decisions with an early job already reported: pending, not a success.
        for _ in range(5):
            i += 1
            _put(store, i, Group.TREATMENT, 2, JOB)
        i += 1
        _put(store, i, Group.CONTROL, 2, None)  # young, nothing reported
        s = client.get("/v1/experiment/summary", headers=RESEARCHER).json()
    t, c = s["treatment"], s["control"]
    assert (t["decisions"], t["settled"], t["employed"]) == (15, 15, 11)  # running counters
    assert (c["decisions"], c["settled"], c["employed"]) == (12, 11, 3)
    assert s["report_lag_weeks"] == LAG and s["analysis_time"] > 0
    if simulated_time:  # the clock says nothing about weeks: every settled outcome counts
        assert (t["analysed"], t["pending"], c["analysed"], c["pending"]) == (15, 0, 11, 1)
        assert "simulated time" in s["note"]
        return
    assert (t["analysed"], t["analysed_employed"], t["pending"]) == (10, 6, 5)
    assert (c["analysed"], c["analysed_employed"], c["pending"]) == (10, 3, 2)
    assert t["employment_rate"] == pytest.approx(0.6) and c["employment_rate"] == pytest.approx(0.3)
    diff, low, high = newcombe(6, 10, 3, 10)
    assert s["difference"] == pytest.approx(diff)
    assert (s["difference_ci_low"], s["difference_ci_high"]) == pytest.approx((low, high))
    assert "information time" in s["note"] and "26 + 6 weeks" in s["note"]
