"""Writes the settings reference from toolkit/starbox/settings.py while the manual builds.

A page that holds the line ``{settings-table}`` gets, in its place, one Markdown table per group
of fields of ``Settings``: the comment above the group, then each field's environment variable
and default. A setting added to the code is documented by the next build.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import generated

MARKER = "{settings-table}"
# Notes in the code that name the issue a setting came from say nothing to a reader of the manual.
_ISSUE_NOTE = re.compile(r" ?\((?:issue|Issue) \d+[^)]*\)|^Issue \d+ items? [\d, and]+")


def _groups(source: str) -> list[tuple[str, list[str]]]:
    """(comment, field names) for each run of fields of the Settings class, in source order."""
    lines = source.splitlines()
    cls = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Settings")
    groups: list[tuple[str, list[str]]] = []
    previous_end = cls.lineno
    for node in cls.body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        between = lines[previous_end : node.lineno - 1]
        texts = [ln.strip().lstrip("#").strip() for ln in between if ln.strip().startswith("#")]
        comment = _ISSUE_NOTE.sub("", " ".join(t for t in texts if not t.startswith("---")))
        if comment or not groups or any(not ln.strip() for ln in between):
            groups.append((comment, []))
        groups[-1][1].append(node.target.id)
        previous_end = node.end_lineno or node.lineno
    return groups


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default is dataclasses.MISSING else f.default  # type: ignore[misc]
    if isinstance(value, Path):
        home = str(Path.home())
        text = str(value)
        if f.name == "project_root":
            return "(this checkout)"
        return "~" + text[len(home) :] if text.startswith(home) else text
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}" if value >= 10_000 else str(value)
    return str(value) if value != "" else "(empty)"


def settings_markdown() -> str:
    from starbox import settings

    fields = {f.name: f for f in dataclasses.fields(settings.Settings)}
    out = []
    for comment, names in _groups(Path(settings.__file__).read_text()):
        if comment:
            out += [comment.replace("|", "\\|"), ""]
        out += ["| variable | default |", "|---|---|"]
        out += [f"| `STARBOX_{n.upper()}` | `{_default(fields[n])}` |" for n in names]
        out.append("")
    return "\n".join(out)


def setup(app):
    return generated.replace_marker(app, MARKER, settings_markdown)
