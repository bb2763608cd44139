"""Writes the reference of the service's HTTP endpoints while the manual builds.

A page that holds the line ``{api-reference}`` gets, in its place, one table per service (auth,
query, res, storage, tap, scs, hooks) of every route with its methods and the first line of its
docstring, read from the application itself (its OpenAPI document), so an endpoint added to the
code is in the next build, and one without a docstring fails tests/test_documented.py.
"""

from __future__ import annotations

import os
import tempfile

import generated

MARKER = "{api-reference}"


def operations() -> list[tuple[str, str, str]]:
    """(path, methods, description) of every route, in path order."""
    from starbox import settings
    from starbox.service.app import create_app

    # Building the application touches no database; a throwaway home keeps it off the reader's.
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "STARBOX_HOME": home}
        spec = create_app(settings.load(env)).openapi()
    rows = []
    for path, ops in sorted(spec["paths"].items()):
        if path != "/" and path.endswith("/"):
            continue  # the same route with a trailing slash
        methods = ", ".join(sorted(m.upper() for m in ops))
        texts = [(op.get("description") or "").strip() for op in ops.values()]
        first = next((t for t in texts if t), "")
        rows.append((path, methods, " ".join(first.split("\n\n")[0].split())))
    return rows


def api_markdown() -> str:
    out, section = [], None
    for path, methods, text in operations():
        top = path.strip("/").split("/")[0] or "service"
        if top != section:
            section = top
            out += [
                "",
                f"### /{top}" if top != "service" else "### /",
                "",
                "| endpoint | methods | what it does |",
                "|---|---|---|",
            ]
        out.append(f"| `{path}` | {methods} | {text.replace('|', chr(92) + '|')} |")
    return "\n".join(out) + "\n"


def setup(app):
    return generated.replace_marker(app, MARKER, api_markdown)
