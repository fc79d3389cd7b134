"""``/docs``: Swagger UI served from the service itself, so it works offline.

FastAPI's default ``/docs`` page loads Swagger UI from a CDN (a blank page without Internet
access, and a third party sees who reads the API docs). Here the page loads the Swagger UI
distribution shipped by the ``swagger-ui-bundle`` package (Apache-2.0, its licence travels with
the package), mounted under ``/docs/static``. ReDoc, which has no offline bundle, is off.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
STATIC_URL = "/docs/static"
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
"""The files the page loads, all from :data:`STATIC_URL`."""


def swagger_ui_dir() -> str:
    """Directory of the Swagger UI distribution (``swagger-ui-bundle`` package)."""
    import swagger_ui_bundle  # type: ignore[import-untyped]

    return str(swagger_ui_bundle.swagger_ui_path)


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and its assets locally (create the app with ``docs_url=None``)."""
    app.mount(STATIC_URL, StaticFiles(directory=swagger_ui_dir()), name="swagger-ui")
    openapi_url = app.openapi_url or "/openapi.json"
    title = f"{app.title} - API docs"

    @app.get(DOCS_URL, include_in_schema=False, response_class=HTMLResponse)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=title,
            swagger_js_url=f"{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_URL}/favicon-32x32.png",
            # no call to the public spec validator (validator.swagger.io)
            swagger_ui_parameters={"validatorUrl": None, "persistAuthorization": False},
        )
