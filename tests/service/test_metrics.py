"""The /metrics exposition: every metric of the issue, promtool-clean, bounded labels."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from service.metrics import ServiceMetrics
from tests.helpers.api import CASE, METRICS, citizen_in_group, rec_body
from tests.helpers.promtool import check_metrics

REQUIRED = {
    "nbi_http_request_duration_seconds",
    "nbi_http_requests",
    "nbi_recommendations",
    "nbi_control_share_ratio",
    "nbi_outcomes_received",
    "nbi_outcomes_settled",
    "nbi_pending_decisions",
    "nbi_reward_join_delay_seconds",
    "nbi_learner_lag_messages",
    "nbi_learner_updates",
    "nbi_learner_dead_letters",
    "nbi_model_info",
    "nbi_recommendation_min_probability_ratio",
    "nbi_online_reward_estimate_ratio",
    "nbi_errors",
}


def _traffic(client) -> None:
    for k in range(6):
        raw = citizen_in_group(client, "treatment" if k % 2 else "control", start=500 * k)
        body = client.post("/v1/recommendations", json=rec_body(raw), headers=CASE).json()
        if body["recommendation"]:
            client.post(
                f"/v1/decisions/{body['event_id']}/assignment",
                json={"assigned_action_id": body["recommendation"]["action_id"]},
                headers=CASE,
            )
        client.post(
            "/v1/outcomes",
            # a job on the decision day: a later week would be later than today (422)
            json={"event_id": body["event_id"], "status": "employed", "weeks_to_job": 0},
            headers=CASE,
        )
    client.post(
        "/v1/outcomes",
        json={"event_id": "nope", "status": "dropout", "weeks_observed": 1},
        headers=CASE,
    )
    client.get("/v1/models")


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_exposition_passes_promtool_and_has_every_metric(client):
    _traffic(client)
    r = client.get("/metrics", headers=METRICS)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    checked = check_metrics(r.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert names >= REQUIRED, REQUIRED - names
    samples = _samples(r.text)
    assert samples[("nbi_recommendations_total", (("family", "none"), ("group", "control")))] == 3
    treated = sum(
        v
        for (n, labels), v in samples.items()
        if n == "nbi_recommendations_total" and ("group", "treatment") in labels
    )
    assert treated == 3
    assert samples[("nbi_control_share_ratio", ())] == 0.5
    assert samples[("nbi_outcomes_settled_total", (("result", "employed"), ("source", "api")))] == 6
    assert samples[("nbi_online_reward_estimate_ratio", (("group", "treatment"),))] == 1.0
    assert samples[("nbi_pending_decisions", ())] == 0
    assert samples[("nbi_errors_total", (("type", "unknown_event"),))] == 1
    assert samples[("nbi_errors_total", (("type", "unauthorized"),))] == 1
    assert (
        samples[
            (
                "nbi_http_request_duration_seconds_count",
                (("method", "POST"), ("route", "/v1/recommendations")),
            )
        ]
        == 6
    )
    assert samples[("nbi_recommendation_min_probability_ratio_count", ())] == 3
    assert sum(v for (n, _), v in samples.items() if n == "nbi_model_info") == 1


def test_labels_are_bounded_no_ids_in_metrics(client):
    _traffic(client)
    for i in range(5):
        client.post(
            f"/v1/decisions/evt{i}/assignment",
            json={"assigned_action_id": "MENTOR_001"},
            headers=CASE,
        )
    text = client.get("/metrics", headers=METRICS).text
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert routes <= {
        "/v1/recommendations",
        "/v1/decisions/{event_id}/assignment",
        "/v1/outcomes",
        "/v1/models",
        "/metrics",
        "unmatched",
    }
    assert not re.search(r"[0-9a-f]{32}", text)  # no event ids
    assert not re.search(r"p_[0-9a-f]{64}", text)  # no pseudonyms


def test_a_fresh_registry_per_instance():
    a, b = ServiceMetrics(), ServiceMetrics()
    a.recommendations.labels("mentor", "treatment").inc()
    assert b'nbi_recommendations_total{family="mentor",group="treatment"} 0.0' in b.exposition()
    assert check_metrics(ServiceMetrics().exposition().decode()).returncode == 0
