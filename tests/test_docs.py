"""The user manual (docs/): it builds with warnings as errors, its toolkit reference documents
every public function of ac, qc and sc, its operations page lists every setting and command,
and the service serves it at /docs/ (or says how to build it)."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starbox import authClient as ac
from starbox import queryClient as qc
from starbox import storeClient as sc
from starbox.settings import PROJECT_ROOT, Settings

DOCS = PROJECT_ROOT / "docs"
pytestmark = pytest.mark.unit  # no database, no service process


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """A project root whose docs/_build/html is this checkout's manual, freshly built."""
    root = tmp_path_factory.mktemp("manual")
    html = root / "docs" / "_build" / "html"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(DOCS),
            str(html),
            "-d",
            str(root / "doctrees"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "toolkit")},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return root


def public_functions(module) -> list[str]:
    names = getattr(module, "__all__", None) or [
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", None) == module.__name__
    ]
    return [n for n in names if inspect.isfunction(getattr(module, n)) or inspect.isclass(getattr(module, n))]


def test_manual_builds_with_every_public_function(built):
    reference = (built / "docs" / "_build" / "html" / "toolkit.html").read_text()
    missing = [
        f"{m.__name__}.{n}"
        for m in (ac, qc, sc)
        for n in public_functions(m)
        if f'id="{m.__name__}.{n}"' not in reference
    ]
    assert not missing, f"not in the toolkit reference: {missing}"
    assert len(public_functions(qc)) > 20 and len(public_functions(sc)) > 20 and len(public_functions(ac)) > 10


def test_every_public_function_documents_its_parameters():
    undocumented = []
    for module in (ac, qc, sc):
        for name in public_functions(module):
            func = getattr(module, name)
            doc = inspect.getdoc(func) or ""
            params = [p for p in inspect.signature(func).parameters if p not in ("self", "kw", "kwargs")]
            if not doc or any(f"{p} :" not in doc for p in params):
                undocumented.append(f"{module.__name__}.{name}")
    assert not undocumented, f"docstrings without every parameter: {undocumented}"


def test_operations_lists_every_setting_and_command(built):
    import typer
    from starbox.cli import app

    page = (built / "docs" / "_build" / "html" / "operations.html").read_text()
    settings = [f"STARBOX_{f.name.upper()}" for f in dataclasses.fields(Settings)]
    assert not [s for s in settings if s not in page]

    def commands(group, prefix):
        for name, command in group.commands.items():
            yield f"{prefix} {name}"
            if hasattr(command, "commands"):
                yield from commands(command, f"{prefix} {name}")

    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())  # the page's words, without markup
    assert not [c for c in commands(typer.main.get_command(app), "starbox") if c not in text]


def get(app, path: str) -> httpx.Response:
    async def fetch():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://starbox") as client:
            return await client.get(path)

    return asyncio.run(fetch())


def test_service_serves_the_manual(built):
    from starbox.service.app import create_app

    app = create_app(Settings(project_root=built))
    r = get(app, "/docs/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Starbox user manual" in r.text and "start/student.html" in r.text
    assert get(app, "/docs/toolkit.html").status_code == 200
    assert get(app, "/docs").status_code in (307, 308)  # to /docs/
    assert get(app, "/apidocs").status_code == 200  # the OpenAPI browser moved here


def test_service_says_how_to_build_a_missing_manual(tmp_path):
    from starbox.service.app import create_app

    r = get(create_app(Settings(project_root=tmp_path)), "/docs/")
    assert r.status_code == 404 and r.headers["content-type"].startswith("text/plain")
    assert "not built" in r.text and "sphinx" in r.text
