"""The API's documentation page, ``/docs``: Swagger UI served from the package that ships it
(``fastapi-swagger``'s copy of the Swagger UI distribution), so that it works without the
internet (FastAPI's own page loads it from a CDN)."""

from __future__ import annotations

from importlib.resources import files
from typing import Final

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html

from paycore.platform.errors import NotFound

_ASSETS: Final = files("fastapi_swagger") / "resources"
_MEDIA_TYPES: Final = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}


def install_docs(app: FastAPI, path: str = "/docs") -> None:
    """``path`` shows the app's OpenAPI document in Swagger UI; ``path/<asset>`` serves the
    page's script, style sheet and icon."""
    assets = {name: (_ASSETS / name).read_bytes() for name in _MEDIA_TYPES}

    @app.get(path, include_in_schema=False)
    async def docs_page(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - documentation",
            swagger_js_url=f"{root}{path}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{path}/swagger-ui.css",
            swagger_favicon_url=f"{root}{path}/favicon-32x32.png",
        )

    @app.get(path + "/{asset}", include_in_schema=False)
    async def docs_asset(asset: str) -> Response:
        if asset not in assets:
            raise NotFound(f"no documentation asset {asset!r}")
        headers = {"Cache-Control": "public, max-age=86400"}
        return Response(assets[asset], media_type=_MEDIA_TYPES[asset], headers=headers)
