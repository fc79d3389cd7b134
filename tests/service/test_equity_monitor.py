"""Parity and drift monitoring (issue 13, items 2 and 4): the figures by hand, the gauges
promtool-clean, the alert rules firing and not firing on synthetic series, and a deliberately
biased feed through the real app that makes the parity alert condition true."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from bandit.context import CitizenContext
from bandit.control import Group
from bandit.records import DecisionRecord
from offline_eval.drift import calibration, feature_psi, psi_numeric
from service.parity import MonitoredDecision, need_quartiles, parity_report
from tests.helpers.api import CASE, METRICS, context
from tests.helpers.promtool import check_metrics
from tests.service.test_alert_rules import RULES, _case, _promtool, _s

SCARCE = [f"PRIVATE_WAGE_SUBSIDY_00{i}" for i in range(1, 6)] + [
    f"PRIVATE_INTERNSHIP_00{i}" for i in range(1, 6)
]
ORDINARY = [f"MENTOR_00{i}" for i in range(1, 6)] + [
    f"INDIVIDUAL_MEETINGS_00{i}" for i in range(1, 5)
]
MIN_GROUP = 20


# ------------------------------------------------------------------------ figures by hand


def test_parity_rates_ratios_and_calibration_by_hand():
    male = [MonitoredDecision({"gender": "male"}, recommended_scarce=i < 6) for i in range(10)]
    female = [MonitoredDecision({"gender": "female"}, recommended_scarce=i < 3) for i in range(10)]
    settled = [
        MonitoredDecision({"origin": "danish"}, employed=i < 5, predicted=0.5) for i in range(10)
    ] + [MonitoredDecision({"origin": "western"}, employed=i < 2, predicted=0.4) for i in range(10)]
    report = parity_report(male + female + settled, min_group_size=10)
    assert report.rates[("recommendation", "gender", "male")].rate == pytest.approx(0.6)
    assert report.rates[("recommendation", "gender", "female")].rate == pytest.approx(0.3)
    assert report.min_max_ratio[("recommendation", "gender")] == pytest.approx(0.5)
    assert report.gap[("recommendation", "gender")] == pytest.approx(0.3)
    # calibration: danish |0.5 - 0.5| = 0, western |0.4 - 0.2| = 0.2
    assert report.calibration_error["origin"] == pytest.approx(0.2)
    assert report.min_max_ratio[("employment", "origin")] == pytest.approx(0.4)
    # a group below min_group_size does not enter: one group left, no ratio
    small = parity_report(male + female[:9], min_group_size=10)
    assert math.isnan(small.min_max_ratio[("recommendation", "gender")])
    assert ("recommendation", "gender", "female") in small.rates


def test_need_quartiles_split_the_window_in_four():
    scores = [i / 100 for i in range(100)]
    q = need_quartiles(scores)
    assert [q.count(k) for k in ("q1", "q2", "q3", "q4")] == [25, 25, 25, 25]
    assert q[0] == "q1" and q[-1] == "q4"  # q1: the lowest expected employment


def test_psi_by_hand_and_its_reading():
    # two bins at the reference median: reference 50/50, current 80/20
    ref = [float(i) for i in range(100)]
    cur = [float(i % 50) for i in range(80)] + [float(50 + i) for i in range(20)]
    r, c = (50.5 / 101, 50.5 / 101), (80.5 / 101, 20.5 / 101)
    expected = sum((ci - ri) * math.log(ci / ri) for ri, ci in zip(r, c, strict=True))
    assert psi_numeric(ref, cur, bins=2) == pytest.approx(expected)
    same = [{"age": 20 + i % 40, "target_group": "dagpenge"} for i in range(400)]
    psi = feature_psi(same, list(reversed(same)), bins=10, min_decisions=100)
    assert psi["age"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(feature_psi(same[:50], same, bins=10, min_decisions=100)["age"])
    assert calibration([(0.3, True), (0.1, False)]).error == pytest.approx(0.3)


# ------------------------------------------------------------------------ alert rules


def _parity(measure: str, ratio: float) -> list[dict]:
    labels = f'measure="{measure}",dimension="gender"'
    return [_s(f"nbi_parity_min_max_ratio{{{labels}}}", f"{ratio}x90")]


RULE_CASES = {
    "recommendation biased": _case(
        _parity("recommendation", 0.5), "70m", "NbiRecommendationParity", True
    ),
    "recommendation even": _case(
        _parity("recommendation", 0.9), "70m", "NbiRecommendationParity", False
    ),
    "recommendation biased briefly": _case(
        _parity("recommendation", 0.5), "30m", "NbiRecommendationParity", False
    ),
    "receipt biased": _case(_parity("receipt", 0.7), "70m", "NbiReceiptParity", True),
    "receipt even": _case(_parity("receipt", 0.85), "70m", "NbiReceiptParity", False),
    "outcome biased": _case(_parity("employment", 0.6), "70m", "NbiOutcomeParity", True),
    "outcome even": _case(_parity("employment", 1.0), "70m", "NbiOutcomeParity", False),
    "calibration off for a group": _case(
        [_s('nbi_parity_calibration_error_ratio{dimension="origin"}', "0.15x90")],
        "70m",
        "NbiCalibrationParity",
        True,
    ),
    "calibration fine": _case(
        [_s('nbi_parity_calibration_error_ratio{dimension="origin"}', "0.05x90")],
        "70m",
        "NbiCalibrationParity",
        False,
    ),
    "age drifted": _case(
        [_s('nbi_drift_population_stability_index{feature="age"}', "0.4x90")],
        "70m",
        "NbiFeatureDrift",
        True,
    ),
    "moderate shift only": _case(
        [_s('nbi_drift_population_stability_index{feature="age"}', "0.2x90")],
        "70m",
        "NbiFeatureDrift",
        False,
    ),
    "calibration drifted": _case(
        [_s("nbi_drift_calibration_error_ratio", "0.12x90")], "70m", "NbiCalibrationDrift", True
    ),
    "calibration stable": _case(
        [_s("nbi_drift_calibration_error_ratio", "0.02x90")], "70m", "NbiCalibrationDrift", False
    ),
    # the monitor last ran at t=0 (value 0): stale after 6 h + 15 min, fresh before
    "monitor stale": _case(
        [_s("nbi_monitor_last_run_timestamp_seconds", "0x500")], "7h", "NbiMonitorStale", True
    ),
    "monitor fresh": _case(
        [_s("nbi_monitor_last_run_timestamp_seconds", "0+60x500")],
        "7h",
        "NbiMonitorStale",
        False,
    ),
}


def _run_rule_tests(tmp_path: Any, cases: list[dict]) -> None:
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": cases}
    path = tmp_path / "equity_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_equity_alerts_fire_exactly_when_they_should(tmp_path):
    _run_rule_tests(tmp_path, list(RULE_CASES.values()))


def test_a_rule_test_that_expects_the_wrong_state_fails(tmp_path):
    wrong = _case(_parity("recommendation", 0.5), "70m", "NbiRecommendationParity", False)
    with pytest.raises(AssertionError):
        _run_rule_tests(tmp_path, [wrong])


# ------------------------------------------------------------------------ through the real app


@pytest.fixture
def monitored_settings(settings: Any) -> Any:
    return settings.model_copy(
        update={
            "control_share": 0.0,  # every decision in the treatment arm
            "simulated_time": True,  # outcomes reported now are known now
            "capacity_tracking": False,  # seats are not the subject here
            "monitor_min_group_size": MIN_GROUP,
        }
    )


@pytest.fixture
def monitored_client(monitored_settings: Any) -> Any:
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(monitored_settings)) as c:
        yield c


def _citizen(i: int) -> str:
    return f"{(i % 28) + 1:02d}0190{i:04d}"


def _feed(client: Any, n: int, *, biased: bool, start: int = 0) -> None:
    """``n`` decisions, half per gender, each assigned as recommended with a known outcome.

    Biased: men may get only scarce offers and find jobs, women only ordinary ones and do not.
    Even: both genders alternate scarce/ordinary and outcomes alike.
    """
    for i in range(start, start + n):
        gender = ("male", "female")[i % 2]
        scarce = gender == "male" if biased else (i // 2) % 2 == 0
        body = {
            "citizen_id": _citizen(i),
            "context": context(),
            "protected": {"gender": gender},
            "eligible_action_ids": SCARCE if scarce else ORDINARY,
        }
        r = client.post("/v1/recommendations", json=body, headers=CASE)
        assert r.status_code == 200, r.text
        event_id, action = r.json()["event_id"], r.json()["recommendation"]["action_id"]
        a = client.post(
            f"/v1/decisions/{event_id}/assignment",
            json={"assigned_action_id": action},
            headers=CASE,
        )
        assert a.status_code == 200, a.text
        outcome = {"event_id": event_id, "status": "employed", "weeks_to_job": 5}
        if not scarce:
            outcome = {"event_id": event_id, "status": "unemployed_at_horizon"}
        o = client.post("/v1/outcomes", json=outcome, headers=CASE)
        assert o.status_code == 200, o.text


def _scrape(client: Any) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = client.get("/metrics", headers=METRICS).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def _as_series(samples: dict) -> list[dict]:
    """The scraped monitor gauges as constant promtool input series (NaN: no series)."""
    out = []
    for (name, labels), value in samples.items():
        if name.startswith(("nbi_parity_", "nbi_drift_")) and not math.isnan(value):
            text = ",".join(f'{k}="{v}"' for k, v in labels)
            out.append(_s(f"{name}{{{text}}}", f"{value}x90"))
    return out


def _alerts_at(series: list[dict], alert: str, labels: str, firing: bool) -> dict:
    case = _case(series, "70m", alert, firing)
    if firing:  # also the labels of the firing alert
        case["promql_expr_test"].append(
            {
                "expr": f'ALERTS{{alertname="{alert}",alertstate="firing"}}',
                "eval_time": "70m",
                "exp_samples": [
                    {
                        "labels": f'ALERTS{{alertname="{alert}",alertstate="firing",'
                        f'severity="warning",{labels}}}',
                        "value": 1,
                    }
                ],
            }
        )
    return case


def test_a_biased_feed_through_the_app_makes_the_parity_alerts_true(monitored_client, tmp_path):
    _feed(monitored_client, 2 * MIN_GROUP + 4, biased=True)
    result = monitored_client.app.state.monitor.tick()
    text, samples = _scrape(monitored_client)
    checked = check_metrics(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def gauge(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    rate = "nbi_parity_rate_ratio"
    assert gauge(rate, measure="recommendation", dimension="gender", group="male") == 1.0
    assert gauge(rate, measure="recommendation", dimension="gender", group="female") == 0.0
    assert gauge(rate, measure="receipt", dimension="gender", group="female") == 0.0
    assert gauge(rate, measure="employment", dimension="gender", group="male") == 1.0
    n = gauge(
        "nbi_parity_group_decisions", measure="recommendation", dimension="gender", group="male"
    )
    assert n == MIN_GROUP + 2
    assert gauge("nbi_parity_min_max_ratio", measure="recommendation", dimension="gender") == 0.0
    # nobody sent an origin: a single group, no ratio (NaN)
    assert math.isnan(
        gauge("nbi_parity_min_max_ratio", measure="recommendation", dimension="origin")
    )
    # calibration: men all employed, women none; the model's prediction sits in between
    male = result.parity.rates[("predicted_employment", "gender", "male")].rate
    female = result.parity.rates[("predicted_employment", "gender", "female")].rate
    expected = max(1.0 - male, female)
    assert gauge("nbi_parity_calibration_error_ratio", dimension="gender") == pytest.approx(
        expected
    )
    # drift calibration over the same known outcomes: half employed, predictions averaged
    assert gauge("nbi_drift_calibration_decisions", window="current") == 2 * MIN_GROUP + 4
    assert gauge("nbi_drift_calibration_observed_ratio", window="current") == 0.5
    predicted = gauge("nbi_drift_calibration_predicted_ratio", window="current")
    assert predicted == pytest.approx((male + female) / 2)
    series = _as_series(samples)
    _run_rule_tests(
        tmp_path,
        [
            _alerts_at(series, "NbiRecommendationParity", 'dimension="gender"', True),
            _alerts_at(series, "NbiReceiptParity", 'dimension="gender"', True),
            _alerts_at(series, "NbiOutcomeParity", 'dimension="gender"', True),
            _alerts_at(series, "NbiCalibrationParity", 'dimension="gender"', True),
            _alerts_at(series, "NbiFeatureDrift", "", False),  # no reference window yet
        ],
    )


def test_an_even_feed_through_the_app_leaves_the_parity_alerts_quiet(monitored_client, tmp_path):
    _feed(monitored_client, 2 * MIN_GROUP + 8, biased=False)
    monitored_client.app.state.monitor.tick()
    text, samples = _scrape(monitored_client)
    assert check_metrics(text).returncode == 0
    ratio = samples[
        ("nbi_parity_min_max_ratio", (("dimension", "gender"), ("measure", "recommendation")))
    ]
    assert ratio == pytest.approx(1.0)
    series = _as_series(samples)
    _run_rule_tests(
        tmp_path,
        [
            _alerts_at(series, "NbiRecommendationParity", "", False),
            _alerts_at(series, "NbiReceiptParity", "", False),
        ],
    )


def _record(i: int, ts: float, age: int) -> DecisionRecord:
    features = CitizenContext.from_mapping(context(age=age)).features()
    return DecisionRecord(
        f"{i:032x}", ts, f"p_{i:064x}", Group.CONTROL, features, (), (), None, None, "m", "p"
    )


def test_a_shifted_population_raises_the_drift_alert_for_that_feature_only(
    monitored_client, tmp_path
):
    runtime = monitored_client.app.state.runtime
    window = runtime.settings.monitor_window_days * 24 * 3600
    now = time.time()
    horizon = runtime.settings.horizon_seconds
    for i in range(60):  # the reference window: young citizens
        runtime.store.put_decision(
            _record(i, now - 1.5 * window, 20 + i % 10), horizon_seconds=horizon
        )
    for i in range(60):  # the current window, through the API: older citizens
        body = {"citizen_id": _citizen(i), "context": context(age=50 + i % 10)}
        assert monitored_client.post("/v1/recommendations", json=body, headers=CASE).is_success
    result = monitored_client.app.state.monitor.tick()
    assert result.sizes == (60, 60)
    assert result.psi["age"] > 0.25
    assert result.psi["target_group"] == pytest.approx(0.0, abs=1e-12)
    text, samples = _scrape(monitored_client)
    assert check_metrics(text).returncode == 0
    series = _as_series(samples)
    _run_rule_tests(
        tmp_path,
        [
            _alerts_at(series, "NbiFeatureDrift", 'feature="age"', True),
            _alerts_at(series, "NbiRecommendationParity", "", False),
        ],
    )


def test_protected_attributes_are_monitored_but_never_model_features(monitored_client):
    body = {
        "citizen_id": _citizen(1),
        "context": context(),
        "protected": {"gender": "female", "origin": "non_western"},
    }
    event_id = monitored_client.post("/v1/recommendations", json=body, headers=CASE).json()[
        "event_id"
    ]
    store = monitored_client.app.state.runtime.store
    record = store.get_decision(event_id)
    assert store.get_protected(event_id) is not None
    flat = repr(dict(record.context))
    assert "female" not in flat and "non_western" not in flat and "protected" not in flat
    assert set(record.context) <= set(CitizenContext.from_mapping(context()).features())
