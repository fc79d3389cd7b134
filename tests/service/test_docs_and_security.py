"""``/docs`` works offline (Swagger UI served by the service) and the OpenAPI documents the
API-key security of every protected operation."""

from __future__ import annotations

import re

from service.docs import ASSETS, STATIC_URL

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
