"""Writes the reference of the `starbox` command line while the manual builds.

A page that holds the line ``{cli-reference}`` gets, in its place, a table of every command and
subcommand with its one-line help, read from the CLI itself (starbox.cli.app), so a command added
to the code is documented by the next build.
"""

from __future__ import annotations

import generated

MARKER = "{cli-reference}"


def _rows(group, prefix: str):
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        yield path, " ".join((command.help or "").split("\n\n")[0].split())
        if hasattr(command, "commands"):
            yield from _rows(command, path)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def cli_markdown() -> str:
    import typer
    from starbox.cli import app

    rows = _rows(typer.main.get_command(app), "starbox")
    lines = ["| command | what it does |", "|---|---|"]
    lines += [f"| `{path}` | {_cell(help_text)} |" for path, help_text in rows]
    return "\n".join(lines) + "\n"


def setup(app):
    return generated.replace_marker(app, MARKER, cli_markdown)
