"""Nothing a user can set, run or call goes undocumented (datasette's habit): a setting without
its comment, a command without its help line or an endpoint without its docstring fails here,
and the manual's generated tables (docs/_ext) are on the pages they belong to."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "_ext"))

import api_reference  # noqa: E402
import cli_reference  # noqa: E402
import settings_table  # noqa: E402


def test_every_setting_has_its_comment():
    from starbox import settings

    groups = settings_table._groups(Path(settings.__file__).read_text())
    grouped = [name for _, names in groups for name in names]
    assert sorted(grouped) == sorted(f.name for f in dataclasses.fields(settings.Settings))
    bare = [names for comment, names in groups if not comment.strip()]
    assert bare == [], f"settings with no comment above them in settings.py: {bare}"


def test_every_command_has_its_help():
    import typer

    from starbox.cli import app

    rows = list(cli_reference._rows(typer.main.get_command(app), "starbox"))
    assert len(rows) > 20
    bare = [path for path, text in rows if not text.strip()]
    assert bare == [], f"commands with no help line: {bare}"


def test_every_endpoint_has_its_docstring():
    rows = api_reference.operations()
    paths = {path for path, _, _ in rows}
    assert {"/query/query", "/storage/ls", "/tap/sync", "/auth/login", "/scs/{schema}/{table}"} <= paths
    bare = [path for path, _, text in rows if not text]
    assert bare == [], f"endpoints with no docstring: {bare}"


@pytest.mark.parametrize("marker", [settings_table.MARKER, cli_reference.MARKER, api_reference.MARKER])
def test_the_generated_references_are_in_the_manual(marker):
    assert any(marker in page.read_text() for page in DOCS.rglob("*.md")), f"no page holds {marker}"
