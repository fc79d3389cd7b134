"""Issue 11.8: problem answers never echo input (a CPR in the path, invented field names, action
ids) and the CPR detector covers the forms in domain use: dotted dates, split tokens,
percent-encoding in the access log; redaction leaves hex event ids alone."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bandit.privacy import looks_like_cpr, redact_cpr
from service.logs import JsonFormatter
from tests.helpers.api import CASE, PROBLEM, context, rec_body, store_state
from tests.helpers.redis_server import free_port

NBI = str(Path(sys.executable).with_name("nbi"))
CPRS = ["0101901234", "010190-1234", "01.01.90-1234", "01.01.901234", "010190 1234"]


@pytest.mark.parametrize("raw", ["0101901234", "010190-1234"])
def test_a_cpr_in_the_path_is_not_echoed_in_instance(client, raw):
    r = client.post(
        f"/v1/decisions/{raw}/assignment", json={"assigned_action_id": "x"}, headers=CASE
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    assert r.json()["instance"] == "/v1/decisions/{event_id}/assignment"
    assert "1234" not in r.text


def test_an_unmatched_path_with_a_cpr_is_not_echoed(client):
    r = client.get("/v1/citizens/01.01.90-1234", headers=CASE)
    assert r.status_code == 404 and "1234" not in r.text


def test_invented_field_names_are_not_echoed_in_errors(client):
    body = rec_body(context=context(**{"cpr_0101901234": 1}), note_for_anna=True)
    r = client.post("/v1/recommendations", json=body, headers=CASE)
    assert r.status_code == 422, r.text
    locs = [e["loc"] for e in r.json()["errors"]]
    assert ["body", "context", "(unknown field)"] in locs
    assert ["body", "(unknown field)"] in locs
    assert "note_for_anna" not in r.text and "0101901234" not in r.text


def test_details_never_echo_action_ids(client):
    secretish = "OFFER_of_Anna_Jensen"
    r = client.post(
        "/v1/recommendations",
        json=rec_body(eligible_action_ids=["mentor_01", secretish][1:]),
        headers=CASE,
    )
    assert r.status_code == 422 and secretish not in r.text
    assert "eligible_action_ids[0]" in r.json()["detail"]
    event_id = client.post("/v1/recommendations", json=rec_body(), headers=CASE).json()["event_id"]
    r = client.post(
        f"/v1/decisions/{event_id}/assignment",
        json={"assigned_action_id": secretish, "reason_code": "other"},
        headers=CASE,
    )
    assert r.status_code == 422 and secretish not in r.text
    assert "assigned_action_id" in r.json()["detail"]


@pytest.mark.parametrize(
    "tokens",
    [["01.01.90-1234"], ["010190", "1234"], ["01.01.90", "1234"], ["010190", "-", "1234"]],
    ids=["dotted", "split", "split-dotted", "split-dash"],
)
def test_cpr_forms_in_cv_tokens_are_refused_and_nothing_is_stored(client, tokens):
    store = client.app.state.runtime.store
    before = store_state(store)
    r = client.post(
        "/v1/recommendations", json=rec_body(context=context(cv_tokens=tokens)), headers=CASE
    )
    assert r.status_code == 422 and r.json()["type"].endswith("sensitive-data"), r.text
    assert "1234" not in r.text
    assert store_state(store) == before


def test_the_detector_covers_domain_forms_and_spares_ordinary_numbers():
    for text in [*CPRS, "010190%2D1234", "01%2E01%2E90%2D1234", "010190%201234"]:
        assert looks_like_cpr(text), text
        assert "1234" not in redact_cpr(f"x {text} y"), text
    assert not looks_like_cpr("9999999999")  # no date
    assert not looks_like_cpr("welding 2024")


def test_redaction_spares_hex_event_ids_with_ten_digits_in_a_row():
    event_id = "3fa0101901234b0c9d8e7f6a5b4c3d2e"
    record = logging.makeLogRecord(
        {"msg": "learned %s", "args": (event_id,), "event_id": event_id, "name": "nbi.learner"}
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == f"learned {event_id}" and line["event_id"] == event_id
    pseudonym = "p_" + "0123456789" + "ab" * 27
    assert redact_cpr(pseudonym) == pseudonym
    assert redact_cpr(f"cpr 0101901234 in {event_id}") == f"cpr [redacted] in {event_id}"


def test_a_percent_encoded_cpr_never_reaches_the_access_log(tmp_path):
    """A real ``nbi serve``: requests whose paths carry a CPR in encoded forms; the process's
    log (uvicorn's access log included) holds none of them."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NBI_")}
    env.update(
        NBI_SQLITE_PATH=str(tmp_path / "nbi.sqlite3"),
        NBI_MODEL_DIR=str(tmp_path / "models"),
        NBI_POLICY="uniform",
    )
    log = tmp_path / "serve.log"
    with log.open("ab") as fh:
        proc = subprocess.Popen(  # noqa: S603
            [NBI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-2000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):  # noqa: S310
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        for path in (
            "/v1/decisions/010190%2D1234/assignment",
            "/v1/decisions/01%2E01%2E90%2D1234/assignment",
            "/v1/decisions/010190%201234/assignment",
            "/v1/citizens/01.01.90-1234?cpr=010190%2D1234",
        ):
            request = urllib.request.Request(  # noqa: S310
                f"http://127.0.0.1:{port}{path}",
                data=b'{"assigned_action_id": "x"}',
                headers={**CASE, "content-type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(request, timeout=5)  # noqa: S310
            assert "1234" not in err.value.read().decode()
        time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    text = log.read_text()
    assert "access" in text or "POST" in text, text[-2000:]
    assert "1234" not in text, [line for line in text.splitlines() if "1234" in line]


def test_a_limit_of_the_schema_is_shown_even_when_cpr_shaped(client):
    """The seed's bound 2147483647 has ten digits like a CPR number; it is the schema's, not
    the client's, so the message keeps it (the value sent is never echoed)."""
    admin = {"X-API-Key": "dev-admin-key"}
    r = client.get("/v1/models/v1/importance?seed=2147483648", headers=admin)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["msg"] == "Input should be less than or equal to 2147483647"
    assert "2147483648" not in r.text
