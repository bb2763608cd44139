"""Sphinx configuration of the Starbox user manual (MyST Markdown, built offline)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# autodoc imports the toolkit from this checkout, not from whatever is installed.
sys.path.insert(0, str(HERE.parent / "toolkit"))
sys.path.insert(0, str(HERE / "_ext"))

project = "Starbox"
author = "the Starbox project"
copyright = "the Starbox project, BSD-3-Clause"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "settings_table",
    "cli_reference",
    "api_reference",
]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "undoc-members": True}
napoleon_numpy_docstring = True
napoleon_google_docstring = False

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = "Starbox user manual"
html_theme_options = {"description": "An astronomy science platform in one box", "fixed_sidebar": True}
