"""The user manual (docs/, built by appliance/install.sh into docs/_build/html) at /docs/.

Mounted as static files when the build is there; otherwise /docs/ answers a short plain page
that says how to build it (404), never a 500.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from starlette.staticfiles import StaticFiles

from starbox.settings import Settings

PREFIX = "/docs"
NOT_BUILT = (
    "The Starbox user manual is not built here.\n"
    "Build it with appliance/install.sh --test (as `make test` does), or by hand in the project folder:\n"
    "  .venv/bin/pip install -e '.[test]'\n"
    "  .venv/bin/python -m sphinx -b html docs docs/_build/html\n"
    "then restart the service (`starbox up`).\n"
)


def build_dir(settings: Settings) -> Path:
    return settings.project_root / "docs" / "_build" / "html"


def mount(app: FastAPI, settings: Settings) -> None:
    """Serve the built manual at /docs/, or the page saying how to build it."""
    html = build_dir(settings)
    if (html / "index.html").is_file():
        app.mount(PREFIX, StaticFiles(directory=html, html=True), name="manual")
        return

    @app.get(PREFIX + "/{path:path}", include_in_schema=False, response_class=PlainTextResponse)
    def manual_not_built(path: str) -> PlainTextResponse:
        return PlainTextResponse(NOT_BUILT, status_code=404)
