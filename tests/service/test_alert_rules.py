"""The shipped Prometheus alert rules: valid (``promtool check rules``), wired into the compose
Prometheus, naming only metrics the service exposes, and firing when they should
(``promtool test rules`` on synthetic series)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

import service
from service.metrics import ServiceMetrics
from tests.helpers.promtool import promtool_binary

ROOT = Path(__file__).resolve().parents[2]
RULES = Path(service.__file__).parent / "prometheus" / "alerts.yml"
ALERTS = {
    "NbiTargetDown",
    "NbiHighErrorRate",
    "NbiHighLatency",
    "NbiStorePersistenceOff",
    "NbiStoreUnreachable",
    "NbiLoadShedding",
    "NbiLearnerLagHigh",
    "NbiLearnerStalled",
    "NbiDeadLetters",
    "NbiLearnerFailing",
    # parity and drift (cases in test_equity_monitor.py)
    "NbiRecommendationParity",
    "NbiReceiptParity",
    "NbiOutcomeParity",
    "NbiCalibrationParity",
    "NbiFeatureDrift",
    "NbiCalibrationDrift",
    "NbiMonitorStale",
    # human oversight (cases in test_oversight.py)
    "NbiCaseworkerRubberStamping",
}


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool_binary(), *args], capture_output=True, text=True, check=False, timeout=60
    )


def _rules() -> list[dict]:
    doc = yaml.safe_load(RULES.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_the_rules_file_is_valid_and_has_every_alert():
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert {r["alert"] for r in _rules()} == ALERTS
    for rule in _rules():
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_the_rules_name_only_metrics_the_service_exposes():
    exposed = set()
    for line in ServiceMetrics().exposition().decode().splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            exposed |= {name, f"{name}_total"} if kind == "counter" else {name}
            if kind == "histogram":
                exposed |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
    used = {m for r in _rules() for m in re.findall(r"\bnbi_[a-z_]+", r["expr"])}
    assert used, "no nbi_ metric in the rules"
    assert used <= exposed, used - exposed


def test_the_compose_prometheus_loads_the_rules(tmp_path):
    config = ROOT / "deploy" / "prometheus" / "prometheus.yml"
    assert "alerts.yml" in yaml.safe_load(config.read_text())["rule_files"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./service/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in mounts
    # the same layout as in the container: the rules beside the config
    shutil.copy(config, tmp_path / "prometheus.yml")
    shutil.copy(RULES, tmp_path / "alerts.yml")
    checked = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def _case(series: list[dict], at: str, alert: str, fires: bool) -> dict:
    """A promtool test: at ``at``, ``alert`` is firing (once) or not at all."""
    firing = f'count(ALERTS{{alertname="{alert}",alertstate="firing"}}) or vector(0)'
    return {
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [
            {
                "expr": firing,
                "eval_time": at,
                "exp_samples": [{"labels": "{}", "value": int(fires)}],
            }
        ],
    }


def _s(name: str, values: str) -> dict:
    return {"series": name, "values": values}


def _latency(slow: bool) -> list[dict]:
    route = 'route="/v1/recommendations",method="POST"'
    # per minute: 100 requests; slow: 4 of them over 100 ms (p99 above 0.1 s)
    under = "0+96x30" if slow else "0+100x30"
    return [
        _s(f'nbi_http_request_duration_seconds_bucket{{{route},le="0.05"}}', under),
        _s(f'nbi_http_request_duration_seconds_bucket{{{route},le="0.1"}}', under),
        _s(f'nbi_http_request_duration_seconds_bucket{{{route},le="0.25"}}', "0+100x30"),
        _s(f'nbi_http_request_duration_seconds_bucket{{{route},le="+Inf"}}', "0+100x30"),
    ]


def _errors(share_5xx: int, shed: int = 0) -> list[dict]:
    """Per minute 1,000 requests, ``share_5xx`` of them 5xx, ``shed`` of those shed (503)."""
    labels = 'route="/v1/recommendations",method="POST"'
    series = [
        _s(f'nbi_http_requests_total{{{labels},status_class="2xx"}}', f"0+{1000 - share_5xx}x30"),
        _s(f'nbi_http_requests_total{{{labels},status_class="5xx"}}', f"0+{share_5xx}x30"),
    ]
    if shed:
        series.append(_s('nbi_requests_shed_total{reason="overloaded"}', f"0+{shed}x30"))
    return series


def _shedding(shed_per_minute: int) -> list[dict]:
    labels = 'route="/v1/recommendations",method="POST"'
    return [
        _s(f'nbi_http_requests_total{{{labels},status_class="2xx"}}', "0+1000x30"),
        _s('nbi_requests_shed_total{reason="overloaded"}', f"0+{shed_per_minute}x30"),
        _s('nbi_requests_shed_total{reason="store_unavailable"}', "0+500x30"),
    ]


CASES = {
    "store down": _case([_s("nbi_store_up", "1 0x10")], "3m", "NbiStoreUnreachable", True),
    "store blip": _case([_s("nbi_store_up", "1 0 1x10")], "3m", "NbiStoreUnreachable", False),
    "shedding 5%": _case(_shedding(50), "16m", "NbiLoadShedding", True),
    "shedding 0.5%": _case(_shedding(5), "16m", "NbiLoadShedding", False),
    "persistence off": _case(
        [_s("nbi_store_durable", "0x10")], "6m", "NbiStorePersistenceOff", True
    ),
    "persistence on": _case(
        [_s("nbi_store_durable", "1x10")], "6m", "NbiStorePersistenceOff", False
    ),
    "persistence off briefly": _case(
        [_s("nbi_store_durable", "0 0 1x10")], "6m", "NbiStorePersistenceOff", False
    ),
    "dead letters": _case(
        [_s("nbi_learner_dead_letters_total", "0 0 0 1x10")], "5m", "NbiDeadLetters", True
    ),
    "no dead letters": _case(
        [_s("nbi_learner_dead_letters_total", "3x20")], "18m", "NbiDeadLetters", False
    ),
    "5% errors": _case(_errors(50), "12m", "NbiHighErrorRate", True),
    "0.2% errors": _case(_errors(2), "12m", "NbiHighErrorRate", False),
    # 5% answered 503 by admission control: load shedding, not failures
    "5% shed": _case(_errors(50, shed=50), "12m", "NbiHighErrorRate", False),
    "5% shed, 2% failed": _case(_errors(70, shed=50), "12m", "NbiHighErrorRate", True),
    "slow": _case(_latency(slow=True), "20m", "NbiHighLatency", True),
    "fast": _case(_latency(slow=False), "20m", "NbiHighLatency", False),
    "lag high": _case(
        [_s("nbi_learner_lag_messages", "2000x30")], "20m", "NbiLearnerLagHigh", True
    ),
    "lag low": _case([_s("nbi_learner_lag_messages", "900x30")], "20m", "NbiLearnerLagHigh", False),
    "stalled": _case(
        [_s("nbi_learner_lag_messages", "50x90"), _s("nbi_learner_updates_total", "7x90")],
        "70m",
        "NbiLearnerStalled",
        True,
    ),
    "stalled, never updated": _case(
        [_s("nbi_learner_lag_messages", "50x90")], "70m", "NbiLearnerStalled", True
    ),
    "learning": _case(
        [_s("nbi_learner_lag_messages", "50x90"), _s("nbi_learner_updates_total", "0+10x90")],
        "70m",
        "NbiLearnerStalled",
        False,
    ),
    "failing": _case(
        [_s("nbi_learner_failures_total", "0+30x30")], "25m", "NbiLearnerFailing", True
    ),
    "learner down": _case(
        [_s('up{job="nbi-learner",instance="learner:9100"}', "0x10")], "5m", "NbiTargetDown", True
    ),
    "learner up": _case(
        [_s('up{job="nbi-learner",instance="learner:9100"}', "1x10")], "5m", "NbiTargetDown", False
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_alert_fires_exactly_when_it_should(tmp_path, name):
    tests = {"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": [CASES[name]]}
    path = tmp_path / "alerts_test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = _promtool("test", "rules", str(path))
    assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
