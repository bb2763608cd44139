"""The lesson notebooks (issue 5): each one follows Data Lab's template and runs top to bottom
through the notebook harness against the live service, as a logged-in user.

Kernels get the service and the login the way the appliance gives them: STARBOX_URL and
STARBOX_TOKEN in their environment, no set-up cell. Notebooks that write to MyDB and storage
need that login; the catalogs alone would do with the anonymous token.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import run_cli
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


@pytest.mark.system
def test_the_documented_nbtest_command_passes_as_the_owner_runs_it(service, tmp_path, output_dir):
    """docs/lessons.md's `starbox nbtest lessons/ --jobs 2 --junit report.xml --html report.html`,
    run by the appliance's owner in a shell with no login of its own: the kernels are logged in
    as the lesson account, as JupyterLab's are, so lessons that use MyDB and storage pass."""
    import xml.etree.ElementTree as ET

    (tmp_path / "lessons").symlink_to(LESSONS)
    started = time.monotonic()
    proc = run_cli(service.settings, "nbtest", "lessons/", "--jobs", "2", "--junit", "report.xml",
                   "--html", "report.html", "--timeout", str(CELL_TIMEOUT),
                   "--keep-executed", str(output_dir / "lessons-executed"), cwd=tmp_path, timeout=1500)
    elapsed = time.monotonic() - started
    print(f"\n{proc.stdout[-6000:]}\n(in {elapsed:.0f} s; executed copies: {output_dir / 'lessons-executed'})")
    assert f"notebooks run as the lesson account {service.settings.local_user}" in proc.stdout
    cases = {c.get("name"): c for c in ET.parse(tmp_path / "report.xml").getroot().iter("testcase")}
    failed = {name: (c.find("failure") if c.find("failure") is not None else c.find("error")).get("message")
              for name, c in cases.items() if c.find("failure") is not None or c.find("error") is not None}
    # every lesson (05_Contrib holds only the template, which nbtest skips as one)
    assert sorted(Path(n).name for n in cases) == sorted(p.name for p in lesson_notebooks())
    assert not failed, failed
    assert proc.returncode == 0 and (tmp_path / "report.html").is_file()


@pytest.mark.system
def test_nbtest_runs_as_the_account_it_is_told(service, tmp_path):
    """--user anonymous: a lesson that writes to MyDB fails, saying to log in; --user names an
    account (its token is revoked after the run); an unknown account is a usage error."""
    from starbox import accounts, database

    lesson = LESSONS / "04_HowTos" / "QueryClient"
    proc = run_cli(service.settings, "nbtest", str(lesson), "--user", "anonymous", cwd=tmp_path, timeout=600)
    assert proc.returncode == 1 and "notebooks run anonymously" in proc.stdout, proc.stdout[-3000:]
    assert "log in" in proc.stdout

    service.add_user("nbtest_who")
    with database.connect_admin(service.settings) as conn:
        before = conn.execute("SELECT count(*) FROM starbox.tokens WHERE username = 'nbtest_who' "
                              "AND NOT revoked").fetchone()[0]
    proc = run_cli(service.settings, "nbtest", str(lesson), "--user", "nbtest_who", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0 and "notebooks run as nbtest_who" in proc.stdout, proc.stdout[-3000:]
    with database.connect_admin(service.settings) as conn:
        after = conn.execute("SELECT count(*) FROM starbox.tokens WHERE username = 'nbtest_who' "
                             "AND NOT revoked").fetchone()[0]
        assert after == before  # the run's token is gone
        assert accounts.uid_of(conn, "nbtest_who") is not None

    proc = run_cli(service.settings, "nbtest", str(lesson), "--user", "nobody_here", cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and "no account named 'nobody_here'" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
