"""What the manual's generated references share: a page holds a marker line, and the marker is
replaced by text the code makes when the page is read."""

from __future__ import annotations

from typing import Callable


def replace_marker(app, marker: str, make: Callable[[], str]) -> dict:
    """Connect `make` to every page that holds `marker`; the setup() answer Sphinx wants."""

    def fill(app, docname, source):
        if marker in source[0]:
            source[0] = source[0].replace(marker, make())

    app.connect("source-read", fill)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
