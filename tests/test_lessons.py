"""The lesson notebooks (issue 5): each one follows Data Lab's template and runs top to bottom
through the notebook harness against the live service, as a logged-in user.

Kernels get the service and the login the way the appliance gives them: STARBOX_URL and
STARBOX_TOKEN in their environment, no set-up cell. Notebooks that write to MyDB and storage
need that login; the catalogs alone would do with the anonymous token.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import starbox.notebooks as nbt
from starbox.notebooks import nbcheck

ROOT = Path(__file__).resolve().parents[1]
LESSONS = ROOT / "lessons"
FOLDERS = ("01_GettingStarted", "03_ScienceExamples", "04_HowTos", "06_EPO")
CELL_TIMEOUT = 180  # seconds per cell; every lesson runs in well under a minute in all
CONTRIB_ONLY = ("location:", "name:")  # nbcheck rules for 05_Contrib pull requests, not for these


def lesson_notebooks() -> list[Path]:
    found = []
    for folder in FOLDERS:
        found += [p for p in (LESSONS / folder).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    return sorted(found)


@pytest.mark.unit
def test_every_lesson_folder_has_notebooks():
    """The four folders of issue 5 exist and each notebook sits in a folder of its own."""
    notebooks = lesson_notebooks()
    for folder in FOLDERS:
        assert any(p.is_relative_to(LESSONS / folder) for p in notebooks), f"no notebook in lessons/{folder}"
    parents = [p.parent for p in notebooks]
    assert len(set(parents)) == len(parents), "two lesson notebooks share a folder"


@pytest.mark.system
def test_lessons_follow_the_template(service):
    """Header cell (author, version, datasets of this appliance, keywords from keywords.txt),
    title, Goals / Summary / Disclaimer & attribution / Resources, no secrets, outputs cleared:
    the checks `starbox nbcheck` applies to contributed notebooks, minus where they must live."""
    reports = nbcheck.check(lesson_notebooks(), service.settings, run=False)
    problems = [f"{r.path.relative_to(LESSONS)}: {p}" for r in reports for p in r.problems
                if not p.startswith(CONTRIB_ONLY)]
    assert not problems, "\n".join(problems)


@pytest.fixture
def lesson_kernels(service, tmp_path, monkeypatch):
    """Kernels started from here see the service and a fresh account's login, as in the appliance."""
    import matplotlib

    token = service.add_user("lessons")
    mpl_cache = matplotlib.get_cachedir()  # keep the font cache when HOME moves
    for name in [k for k in os.environ if k.startswith("STARBOX_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("STARBOX_URL", service.url)
    monkeypatch.setenv("STARBOX_TOKEN", token)
    # A fresh HOME: no ~/.datalab login left by another test (or a developer) can take precedence
    # over STARBOX_TOKEN in the toolkit's token order.
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("MPLCONFIGDIR", mpl_cache)
    return token


@pytest.mark.system
def test_lessons_run(lesson_kernels, output_dir):
    expected = lesson_notebooks()
    started = time.monotonic()
    df = nbt.test([LESSONS / f for f in FOLDERS], jobs=2, timeout=CELL_TIMEOUT,
                  keep_executed=output_dir / "lessons-executed")
    elapsed = time.monotonic() - started

    print(f"\n{len(df)} lesson notebooks in {elapsed:.0f} s (executed copies: {output_dir / 'lessons-executed'})")
    print(df[["notebook", "status", "duration_s"]].to_string(index=False))
    failed = df[df["status"] != "PASS"]
    if len(failed):
        print("\nFAILURES")
        print(failed[["notebook", "status", "failed_cell", "error"]].to_string(index=False))
        for result in df.attrs["results"]:
            if not result.passed:
                print(f"\n=== {result.notebook} (cell {result.failed_cell}: {result.failed_source})")
                print(result.traceback[-3000:])

    assert len(df) == len(expected), f"harness ran {len(df)} notebooks, lessons/ has {len(expected)}"
    assert failed.empty, f"{len(failed)} lesson notebook(s) failed: {', '.join(failed['notebook'])}"
