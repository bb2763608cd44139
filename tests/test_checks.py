"""Checks that keep the house as it is (issue 12, item 6): ruff's lint and format and mypy,
clean on the toolkit, the manual's extensions and the benchmarks; the py.typed pyproject names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHECKED = ["toolkit", "docs/_ext", "bench"]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_lint_is_clean():
    out = _run(str(BIN / "ruff"), "check", "--output-format", "concise", *CHECKED)
    assert out.returncode == 0, out.stdout + out.stderr


def test_ruff_format_is_clean():
    out = _run(str(BIN / "ruff"), "format", "--check", *CHECKED)
    assert out.returncode == 0, "run `ruff format toolkit docs/_ext bench`:\n" + out.stdout + out.stderr


def test_mypy_is_clean():
    out = _run(str(BIN / "mypy"))  # files and settings: [tool.mypy] in pyproject.toml
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_package_says_it_is_typed():
    assert (ROOT / "toolkit" / "starbox" / "py.typed").is_file()
    assert 'starbox = ["py.typed"]' in (ROOT / "pyproject.toml").read_text()
