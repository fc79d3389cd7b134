"""Human oversight (issue 9, item 7): override rates by hand, the rubber-stamping alert rule on
synthetic series, and a feed through the real app on both stores in which one caseworker
follows every suggestion and another overrides half of them: the gauges, the admin table
(pseudonymised) and the alert condition."""

from __future__ import annotations

import dataclasses
import math
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from scipy.stats import binom

from bandit.control import Group
from bandit.privacy import pseudonymise_cluster
from bandit.records import DecisionRecord
from service.app import create_app
from service.config import Settings
from service.oversight import overridden, oversight_report, short_key
from tests.helpers.api import ADMIN, CASE, METRICS, RESEARCHER, context, store_state
from tests.helpers.promtool import check_metrics
from tests.service.test_alert_rules import RULES, _promtool, _s

ALERT = "NbiCaseworkerRubberStamping"
MIN_ASSIGNMENTS = 10


# ------------------------------------------------------------------------ figures by hand


def _rec(i: int, *, assigned: str | None, cw: str | None = "c_" + "1" * 64, **kw: Any) -> Any:
    base = DecisionRecord(
        f"e{i}", 0.0, "p_x", Group.TREATMENT, {}, ("A", "B"), (0.5, 0.5), "A", 0.5, "m", "p"
    )
    return _with(base, assigned=assigned, caseworker_key=cw, **kw)


def _with(record: DecisionRecord, **changes: Any) -> DecisionRecord:
    return dataclasses.replace(record, **changes)


def test_only_assignments_after_a_shown_suggestion_count() -> None:
    assert overridden(_rec(0, assigned="B")) is True
    assert overridden(_rec(0, assigned="A")) is False
    assert overridden(_rec(0, assigned=None)) is None  # not assigned yet
    assert overridden(_rec(0, assigned="B", mode="shadow")) is None  # nothing shown
    assert overridden(_rec(0, assigned="B", mode="practice", recommended=None)) is None
    control = _with(_rec(0, assigned="B"), group=Group.CONTROL, recommended=None, pmf=())
    assert overridden(control) is None


def test_override_rates_per_caseworker_jobcentre_and_group_by_hand() -> None:
    a, b = "c_" + "a" * 64, "c_" + "b" * 64
    jc = "c_" + "f" * 64
    items = [(_rec(i, assigned="A", cw=a, jobcentre_key=jc), {"gender": "male"}) for i in range(10)]
    items += [
        (_rec(10 + i, assigned="B" if i < 3 else "A", cw=b, jobcentre_key=jc), {"gender": "female"})
        for i in range(12)
    ]
    items += [(_rec(30, assigned="B", cw=None), None)]  # no caseworker id, erased attributes
    items += [(_rec(31, assigned="B", cw=a, mode="shadow"), {"gender": "male"})]  # not counted
    report = oversight_report(items, min_assignments=10, low_rate=0.0)
    assert (report.overall.assignments, report.overall.overrides) == (23, 4)
    assert report.caseworkers[short_key(a)].rate == 0.0
    assert report.caseworkers[short_key(b)].rate == 3 / 12
    assert report.caseworkers["unattributed"].assignments == 1
    assert report.jobcentres[short_key(jc)].rate == 3 / 22
    assert report.jobcentres["unattributed"].rate == 1.0
    assert report.groups[("gender", "male")].rate == 0.0
    assert report.groups[("gender", "female")].rate == 0.25
    assert sum(c.assignments for (d, _), c in report.groups.items() if d == "gender") == 22
    assert report.low_override() == [short_key(a)]
    # b overrides 25 %: not flagged; with fewer than min_assignments nobody is assessed
    assert oversight_report(items, min_assignments=13, low_rate=0.3).low_override() == []
    assert math.isnan(oversight_report([], min_assignments=1, low_rate=0.0).overall.rate)


def test_the_default_thresholds_rarely_flag_a_caseworker_who_does_override() -> None:
    """P(flagged) = P(Binomial(n, p) <= floor(r n)), the figure in service/oversight.py."""
    settings = Settings()
    n, r = settings.oversight_min_assignments, settings.oversight_low_override_rate
    assert (n, r) == (50, 0.02)
    flagged = binom.cdf(math.floor(r * n), n, 0.1)
    assert flagged == pytest.approx(0.9**50 + 50 * 0.1 * 0.9**49)
    assert flagged == pytest.approx(0.034, abs=5e-4)


# ------------------------------------------------------------------------ the alert rule


def _rule_case(values: str, at: str, fires: bool) -> dict[str, Any]:
    firing = f'count(ALERTS{{alertname="{ALERT}",alertstate="firing"}}) or vector(0)'
    return {
        "interval": "1h",
        "input_series": [_s("nbi_oversight_caseworkers_low_override", values)],
        "promql_expr_test": [
            {
                "expr": firing,
                "eval_time": at,
                "exp_samples": [{"labels": "{}", "value": int(fires)}],
            }
        ],
    }


def _run_rule_tests(tmp_path: Path, cases: list[dict[str, Any]]) -> None:
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1h", "tests": cases}
    path = tmp_path / "oversight_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


RULE_CASES = {
    "a caseworker near zero for a day": _rule_case("1x30", "25h", True),
    "two caseworkers": _rule_case("2x30", "25h", True),
    "near zero for less than a day": _rule_case("1x30", "20h", False),
    "recovered": _rule_case("1x20 0x10", "26h", False),
    "nobody near zero": _rule_case("0x30", "25h", False),
}


def test_the_rubber_stamping_alert_fires_exactly_when_it_should(tmp_path: Path) -> None:
    _run_rule_tests(tmp_path, list(RULE_CASES.values()))


def test_a_rule_test_expecting_the_wrong_state_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError):
        _run_rule_tests(tmp_path, [_rule_case("1x30", "25h", False)])


# ------------------------------------------------------------------------ through the real app


@pytest.fixture(params=["sqlite", "redis"])
def cfg(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    common: dict[str, Any] = {
        "policy": "uniform",
        "learning": "worker",
        "model_poll_seconds": 3600.0,
        "sweep_interval_seconds": 3600.0,
        "monitor_interval_seconds": 3600.0,
        "control_share": 0.0,
        "capacity_tracking": False,
        "oversight_min_assignments": MIN_ASSIGNMENTS,
        "oversight_low_override_rate": 0.05,
    }
    if request.param == "sqlite":
        return Settings(store="sqlite", sqlite_path=tmp_path / "nbi.sqlite3", **common)
    server = request.getfixturevalue("contract_redis_server")
    prefix = f"ov{uuid.uuid4().hex[:8]}:"
    return Settings(store="redis", redis_url=server.url, redis_prefix=prefix, **common)


@pytest.fixture
def client(cfg: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(cfg)) as c:
        yield c


def _citizen(i: int) -> str:
    return f"{(i % 28) + 1:02d}0290{i:04d}"


def _feed(client: TestClient, caseworker: str, n: int, overrides: int, start: int) -> None:
    """``n`` decisions of ``caseworker`` at job centre JC-7; the first ``overrides`` assigned
    something else than suggested (with a reason). Genders alternate."""
    for i in range(start, start + n):
        body = {
            "citizen_id": _citizen(i),
            "context": context(),
            "protected": {"gender": ("male", "female")[i % 2]},
            "caseworker_id": caseworker,
            "jobcentre_id": "JC-7",
        }
        r = client.post("/v1/recommendations", json=body, headers=CASE)
        assert r.status_code == 200, r.text
        event_id, action = r.json()["event_id"], r.json()["recommendation"]["action_id"]
        assignment: dict[str, Any] = {"assigned_action_id": action}
        if i - start < overrides:
            record = client.app.state.runtime.store.get_decision(event_id)  # type: ignore[attr-defined]
            other = next(a for a in record.eligible if a != action)
            assignment = {"assigned_action_id": other, "reason_code": "caseworker_judgement"}
        a = client.post(f"/v1/decisions/{event_id}/assignment", json=assignment, headers=CASE)
        assert a.status_code == 200, a.text


def _samples(
    client: TestClient,
) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = client.get("/metrics", headers=METRICS).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def test_a_rubber_stamping_caseworker_is_counted_flagged_and_alerted(
    client: TestClient, cfg: Settings, tmp_path: Path
) -> None:
    _feed(client, "CW-stamp", MIN_ASSIGNMENTS + 2, overrides=0, start=0)  # follows every one
    _feed(client, "CW-judge", MIN_ASSIGNMENTS + 2, overrides=6, start=100)  # overrides half
    _feed(client, "CW-new", 3, overrides=0, start=200)  # too few assignments to assess
    client.app.state.monitor.tick()  # type: ignore[attr-defined]
    text, samples = _samples(client)
    checked = check_metrics(text)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def gauge(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    total = 2 * (MIN_ASSIGNMENTS + 2) + 3
    assert gauge("nbi_oversight_assignments") == total
    assert gauge("nbi_oversight_override_ratio") == pytest.approx(6 / total)
    assert gauge("nbi_oversight_caseworkers_assessed") == 2
    assert gauge("nbi_oversight_caseworkers_low_override") == 1
    assert gauge("nbi_oversight_caseworker_min_override_ratio") == 0.0
    assert gauge("nbi_oversight_low_override_threshold_ratio") == 0.05
    # per group: the first six of CW-judge alternate genders, three overrides each
    male = gauge("nbi_oversight_group_assignments", dimension="gender", group="male")
    female = gauge("nbi_oversight_group_assignments", dimension="gender", group="female")
    assert male + female == total
    assert gauge("nbi_oversight_group_override_ratio", dimension="gender", group="male") == (
        pytest.approx(3 / male)
    )
    assert math.isnan(
        gauge("nbi_oversight_group_override_ratio", dimension="origin", group="danish")
    )
    key = pseudonymise_cluster("JC-7", cfg.pseudonym_key_bytes(), "jobcentre")
    assert gauge("nbi_oversight_jobcentre_assignments", jobcentre=short_key(key)) == total
    # no caseworker label anywhere, no raw id in the exposition
    assert "caseworker=" not in text and "CW-stamp" not in text and "JC-7" not in text

    # the admin table: pseudonymised, the rubber-stamper flagged
    assert client.get("/v1/oversight", headers=CASE).status_code == 403
    assert client.get("/v1/oversight", headers=RESEARCHER).status_code == 403
    r = client.get("/v1/oversight", headers=ADMIN)
    assert r.status_code == 200, r.text
    table = r.json()
    assert "CW-" not in r.text and "JC-7" not in r.text
    stamp = short_key(pseudonymise_cluster("CW-stamp", cfg.pseudonym_key_bytes(), "caseworker"))
    judge = short_key(pseudonymise_cluster("CW-judge", cfg.pseudonym_key_bytes(), "caseworker"))
    rows = {row["key"]: row for row in table["caseworkers"]}
    assert rows[stamp] == {
        "key": stamp,
        "assignments": MIN_ASSIGNMENTS + 2,
        "overrides": 0,
        "rate": 0.0,
        "low_override": True,
    }
    assert rows[judge]["rate"] == pytest.approx(6 / (MIN_ASSIGNMENTS + 2))
    assert not rows[judge]["low_override"]
    assert table["caseworkers_assessed"] == 2 and table["caseworkers_low_override"] == 1
    assert len(rows) == 3 and table["overall"]["assignments"] == total
    # the store holds the pseudonyms, never the raw ids
    state = store_state(client.app.state.runtime.store)  # type: ignore[attr-defined]
    assert stamp in state and "CW-stamp" not in state and "JC-7" not in state

    # the scraped gauge makes the alert condition true (held for a day)
    value = gauge("nbi_oversight_caseworkers_low_override")
    _run_rule_tests(
        tmp_path,
        [
            _rule_case(f"{value}x30", "25h", True),
        ],
    )
