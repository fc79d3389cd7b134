"""The compose stack's processes without Docker: redis-server + ``nbi serve --store redis`` +
``nbi learner`` as real processes, one recommendation -> assignment -> outcome -> learned ->
snapshot -> the API serves the new model version.

The learner learns whole outcomes as they are reported (``NBI_DELAY_STRATEGY=at_once``); with
the default strategy a ``uniform`` policy would wait for the 26-week horizon."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest

from tests.helpers.redis_server import RedisServer, free_port
from tests.helpers.service_process import (
    ADMIN_KEY,
    METRICS_KEY,
    NBI,
    call,
    recommendation_body,
    service_env,
    start_api,
)

pytestmark = pytest.mark.integration


def test_round_trip_through_api_learner_and_hot_swap(tmp_path):
    server = RedisServer(tmp_path, appendonly=True).start()
    env = service_env(
        server.url,
        "rt:",
        NBI_MODEL_POLL_SECONDS="0.2",
        NBI_POLICY="uniform",
        NBI_DELAY_STRATEGY="at_once",
    )
    api = learner = None
    try:
        api, port = start_api(env, tmp_path / "api.log")
        learner_argv = [NBI, "learner", "--consumer", "rt-1", "--snapshot-every", "1"]
        metrics_port = free_port()
        learner_argv += ["--block-ms", "200", "--metrics-port", str(metrics_port)]
        with (tmp_path / "learner.log").open("ab") as log:
            learner = subprocess.Popen(learner_argv, env=env, stdout=log, stderr=subprocess.STDOUT)

        status, models = call(port, "GET", "/v1/models", key=ADMIN_KEY)
        assert status == 200, models
        before = models["model_version"]

        body = None
        for i in range(50):  # find a treatment citizen (20 % go to control)
            status, body = call(port, "POST", "/v1/recommendations", recommendation_body(i))
            assert status == 200, body
            if body["group"] == "treatment":
                break
        assert body is not None and body["group"] == "treatment"
        event_id, action = body["event_id"], body["recommendation"]["action_id"]
        status, _ = call(
            port, "POST", f"/v1/decisions/{event_id}/assignment", {"assigned_action_id": action}
        )
        assert status == 200
        # the followed assignment is learned (the event is opened) and snapshotted, but it
        # teaches the model nothing yet: the serving version does not change
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
        deadline = time.monotonic() + 20
        learner_metrics = ""
        while (
            time.monotonic() < deadline and "nbi_model_snapshots_total 1.0" not in learner_metrics
        ):
            time.sleep(0.2)
            try:
                with urllib.request.urlopen(metrics_url, timeout=5) as resp:  # noqa: S310
                    learner_metrics = resp.read().decode()
            except OSError:
                continue
        assert "nbi_model_snapshots_total 1.0" in learner_metrics, (
            tmp_path / "learner.log"
        ).read_text()[-2000:]
        assert "nbi_learner_updates_total 0.0" in learner_metrics
        assert "nbi_learner_lag_messages 0.0" in learner_metrics
        assert call(port, "GET", "/v1/models", key=ADMIN_KEY)[1]["model_version"] == before

        # a job on the decision day: a later week would be later than today (422)
        outcome = {"event_id": event_id, "status": "employed", "weeks_to_job": 0}
        status, settled = call(port, "POST", "/v1/outcomes", outcome)
        assert status == 200, settled

        deadline = time.monotonic() + 20
        after = before
        while time.monotonic() < deadline and after == before:
            time.sleep(0.2)
            _, models = call(port, "GET", "/v1/models", key=ADMIN_KEY)
            after = models["model_version"]
        assert after != before, (tmp_path / "learner.log").read_text()[-2000:]
        assert after.endswith("00000001")  # one update learned

        # what Prometheus scrapes: the learner's own endpoint and the API's /metrics
        with urllib.request.urlopen(metrics_url, timeout=5) as resp:  # noqa: S310 (loopback)
            learner_metrics = resp.read().decode()
        assert "nbi_learner_updates_total 1.0" in learner_metrics
        assert "nbi_model_snapshots_total 2.0" in learner_metrics
        req = urllib.request.Request(  # noqa: S310
            f"http://127.0.0.1:{port}/metrics", headers={"X-API-Key": METRICS_KEY}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:  # noqa: S310
            api_metrics = resp.read().decode()
        assert f'version="{after}"' in api_metrics
    finally:
        for proc in (learner, api):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        server.stop()
