"""The API docs at /docs: Swagger UI served by the platform itself, never from a CDN (provincial networks may be
closed), and without inline script, so the page works under the strict Content-Security-Policy of `app.security`.

The Swagger UI files come from the `fastapi-offline` package (installed from PyPI with the platform); the page and its
few lines of start-up script are ours. `OUTREACH_DOCS_ENABLED=false` turns the docs and /openapi.json off.
"""

import html
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
ASSETS_URL = f"{DOCS_URL}/assets"
SWAGGER_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}{assets}/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}{docs}/start.js" data-openapi-url="{root}{openapi}"></script>
</body>
</html>
"""

# The options FastAPI's own page passes to Swagger UI, read from the script tag instead of written into the page.
START_SCRIPT = """\
"use strict";
(function () {
  var openapiUrl = document.currentScript.dataset.openapiUrl;
  window.addEventListener("load", function () {
    window.ui = SwaggerUIBundle({
      url: openapiUrl,
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      deepLinking: true,
      showExtensions: true,
      showCommonExtensions: true,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
    });
  });
})();
"""

router = APIRouter(include_in_schema=False)


@router.get(DOCS_URL)
def docs_page(request: Request) -> HTMLResponse:
    app: FastAPI = request.app
    root = html.escape(request.scope.get("root_path", "").rstrip("/"))
    page = PAGE.format(
        title=html.escape(f"{app.title} - API docs"),
        root=root,
        assets=ASSETS_URL,
        docs=DOCS_URL,
        openapi=html.escape(app.openapi_url or "/openapi.json"),
    )
    return HTMLResponse(page, headers={"Cache-Control": "no-cache"})


@router.get(f"{DOCS_URL}/start.js")
def start_script() -> Response:
    return Response(START_SCRIPT, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=SWAGGER_ASSETS), name="swagger-ui")
