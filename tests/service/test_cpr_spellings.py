"""CPR spellings through the real app (QA report, defects 3 and 4): a CV token holding a CPR
number with an en dash is refused and nothing is stored; an erasure in another spelling of
the citizen id removes the records made with the plain one; every spelling is one citizen."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from bandit.privacy import pseudonymise
from service.app import create_app
from service.decide import request_key
from tests.helpers.api import ADMIN, CASE, context, rec_body, store_state

PLAIN = "2001851234"


@pytest.fixture
def app_client(settings: Any) -> Any:
    cfg = settings.model_copy(update={"simulated_time": True, "policy": "uniform"})
    with TestClient(create_app(cfg)) as client:
        yield client


def _disk(client: Any) -> bytes:
    path = client.app.state.runtime.settings.sqlite_path
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


def test_cv_tokens_with_a_cpr_number_in_any_spelling_get_422_and_nothing_is_stored(app_client):
    store = app_client.app.state.runtime.store
    ok = app_client.post("/v1/recommendations", json=rec_body(), headers=CASE)
    assert ok.status_code == 200, ok.text
    before = store_state(store)
    spellings = [
        "010190\u20131234",
        "010190\u20101234",
        "010190_1234",
        "abc0101901234def",
        "01-01-90-1234",
        "0101 90 1234",
        "010190 - 1234",
    ]
    for token in spellings:
        body = rec_body(context=context(cv_tokens=["welding", token]))
        r = app_client.post("/v1/recommendations", json=body, headers=CASE)
        assert r.status_code == 422, (token, r.text)
        assert r.json()["type"].endswith("sensitive-data"), r.text
        assert "1234" not in r.text
    assert store_state(store) == before
    disk = _disk(app_client)
    assert b"welding" in disk  # positive control: the scan sees stored CV tokens
    for token in spellings:
        assert token.encode() not in disk
        assert token.encode("unicode_escape") not in disk  # JSON's \u2013 form
    assert b"abc0101901234def" not in disk


def test_erasure_in_another_spelling_removes_the_records_of_the_plain_one(settings):
    cfg = settings.model_copy(update={"simulated_time": True, "policy": "uniform"})
    with TestClient(create_app(cfg)) as client:
        store = client.app.state.runtime.store
        key = cfg.pseudonym_key_bytes()
        for raw in [PLAIN, PLAIN, "200185-1234"]:
            r = client.post("/v1/recommendations", json=rec_body(raw), headers=CASE)
            assert r.status_code == 200, r.text
        other = client.post("/v1/recommendations", json=rec_body("0101901111"), headers=CASE)
        assert other.status_code == 200
        target = pseudonymise(PLAIN, key)
        assert sum(r.citizen_key == target for r in store.iter_records()) == 3

        r = client.post(
            "/v1/citizens/erase",
            json={"citizen_id": "200185\u20131234", "reference": "QA-4"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        assert r.json()["records"] == 3
        left = list(store.iter_records())
        assert [x.citizen_key for x in left] == [pseudonymise("0101901111", key)]


@pytest.mark.parametrize(
    "spelling",
    [
        "200185\u00a01234",
        "200185\t1234",
        "\uff12\uff10\uff10\uff11\uff18\uff15\uff11\uff12\uff13\uff14",
        " 200185 \u2013 1234 ",
    ],
    ids=["no-break-space", "tab", "full-width", "spaced-en-dash"],
)
def test_every_spelling_of_a_citizen_id_is_one_citizen(app_client, spelling):
    store = app_client.app.state.runtime.store
    plain = app_client.post("/v1/recommendations", json=rec_body(PLAIN), headers=CASE).json()
    other = app_client.post("/v1/recommendations", json=rec_body(spelling), headers=CASE).json()
    first, second = (store.get_decision(d["event_id"]) for d in (plain, other))
    assert first.citizen_key == second.citizen_key  # one randomisation, one history
    assert other["group"] == plain["group"]
    erased = app_client.post("/v1/citizens/erase", json={"citizen_id": spelling}, headers=ADMIN)
    assert erased.json()["records"] == 2


def test_request_keys_are_opaque_and_keep_their_hash():
    """Client request ids are opaque tokens compared as sent (no canonicalisation: two keys
    that differ only in a dash are two requests). Regression value computed before the
    citizen-id canonicalisation; it must not change."""
    key = b"regression-key-2026"
    assert request_key("req-1", key) == "r_2b3a4326b3592c16186295999bb18e3ffc5cf1d52caa700c"
    assert request_key("req\u20131", key) != request_key("req-1", key)
