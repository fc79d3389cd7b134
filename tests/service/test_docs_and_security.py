"""``/docs`` works offline (Swagger UI served by the service) and the OpenAPI documents the
API-key security of every protected operation."""

from __future__ import annotations

import re

from service.docs import ASSETS, STATIC_URL
from tests.helpers.api import CASE

_URL = re.compile(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""")


def test_docs_page_loads_only_local_assets(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    urls = _URL.findall(page)
    assert urls, page
    assert all(u.startswith("/") for u in urls), urls  # nothing from a CDN or other host
    assert "//" not in "".join(u for u in urls if not u.startswith("/openapi"))
    assert '"validatorUrl": null' in page or "validatorUrl: null" in page
    for asset in ASSETS:
        assert f"{STATIC_URL}/{asset}" in urls
        got = client.get(f"{STATIC_URL}/{asset}")
        assert got.status_code == 200 and len(got.content) > 500, asset
    assert (
        client.get(f"{STATIC_URL}/swagger-ui-bundle.js")
        .headers["content-type"]
        .startswith(("application/javascript", "text/javascript"))
    )
    assert client.get("/redoc").status_code == 404  # ReDoc has no offline bundle: off


def test_every_protected_operation_lists_the_api_key_schemes(client):
    spec = client.get("/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["BearerKey"]["type"] == "http" and schemes["BearerKey"]["scheme"] == "bearer"
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    protected = [(p, m, op) for p, m, op in operations if p.startswith("/v1/")]
    assert len(protected) >= 6
    for path, method, op in protected:
        assert {"ApiKey": []} in op.get("security", []), (method, path)
        assert {"BearerKey": []} in op["security"], (method, path)
        # the key is documented by the scheme, not as an ordinary header parameter
        assert not any(p["name"].lower() == "x-api-key" for p in op.get("parameters", []))
    for path in ("/healthz", "/readyz"):
        assert "security" not in spec["paths"][path]["get"]


def test_the_security_schemes_do_not_change_what_is_allowed(client):
    # a bearer token with a valid key works like X-API-Key; nothing else does
    ok = client.get(
        "/v1/experiment/summary", headers={"Authorization": "Bearer dev-researcher-key"}
    )
    assert ok.status_code == 200
    assert client.get("/v1/experiment/summary").status_code == 401
    basic = client.get("/v1/experiment/summary", headers={"Authorization": "Basic eDp5"})
    assert basic.status_code == 401


def test_every_operation_documents_the_shared_error_answers_as_problem_json(client):
    """Admission control and the request guard answer before any handler: 401 and 503 on
    every /v1 operation, 400/413/415 on those with a body; every error is problem JSON."""
    spec = client.get("/openapi.json").json()
    assert spec["components"]["schemas"]["Problem"]["required"] == [
        "type",
        "title",
        "status",
        "detail",
    ]
    checked = 0
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if not path.startswith("/v1/") or method not in {"get", "post", "put", "delete"}:
                continue
            answers = op["responses"]
            expected = {"401", "503"} | ({"400", "413", "415"} if "requestBody" in op else set())
            assert expected <= set(answers), (method, path, expected - set(answers))
            for code, answer in answers.items():
                if code[0] in "45":
                    assert list(answer["content"]) == ["application/problem+json"], (path, code)
            checked += 1
    assert checked >= 18
    # the answers are real: an unsupported media type is 415 problem JSON, as documented
    r = client.post(
        "/v1/recommendations", content=b"x", headers={**CASE, "Content-Type": "text/plain"}
    )
    assert r.status_code == 415 and r.headers["content-type"] == "application/problem+json"


def test_a_405_names_every_method_of_the_path(client):
    """Two routes serve /v1/models/kill (POST, DELETE): Allow lists both, not the first's."""
    admin = {"X-API-Key": "dev-admin-key", "Content-Type": "application/json"}
    r = client.put("/v1/models/kill", content=b"{}", headers=admin)
    assert r.status_code == 405 and r.headers["allow"] == "POST, DELETE"
    assert r.headers["content-type"] == "application/problem+json"
    assert client.delete("/healthz").headers["allow"] == "GET"
