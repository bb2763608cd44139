"""`starbox nbcheck` and the contributor kit: the template passes against the live appliance (a real
harness run), and each kind of mistake in a bad notebook is reported on one line with its fix."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from conftest import ROOT, settings_env
from starbox.notebooks import nbcheck
from starbox.notebooks.discover import discover

TEMPLATE = ROOT / "lessons" / "05_Contrib" / "StarboxNotebookTemplate.ipynb"
KEYWORDS = ROOT / "lessons" / "keywords.txt"
STARBOX = Path(sys.executable).with_name("starbox")
TOKEN = "jane.3.1.$1$AbCdEfGhIjKlMnOpQrStUvWx"


@pytest.fixture(scope="module")
def env(service, tmp_path_factory):
    """The environment of a contributor's `starbox` command: the live appliance, a fresh HOME."""
    return settings_env(service.settings) | {"HOME": str(tmp_path_factory.mktemp("contributor-home"))}


@pytest.fixture
def tree(tmp_path):
    """A checkout of the lessons repository: keywords.txt at the top, 05_Contrib below."""
    root = tmp_path / "lessons"
    (root / "05_Contrib").mkdir(parents=True)
    shutil.copy(KEYWORDS, root / "keywords.txt")
    return root


def nbcheck_cli(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(STARBOX), "nbcheck", *map(str, args)], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.unit
def test_keywords_cover_the_template_and_lessons():
    words = nbcheck.read_keywords(KEYWORDS)
    for needed in ("tutorial", "sql", "query", "adql", "tap", "mydb", "storage", "vospace", "crossmatch", "q3c",
                   "cone search", "dwarf galaxies", "hydra ii", "smash", "rr lyrae", "light curve", "periodogram",
                   "colour-magnitude diagram", "hr diagram", "parallax", "hipparcos", "gaia", "openngc", "galaxies",
                   "all-sky map", "education", "widgets", "voila", "notebook testing"):
        assert needed in words, needed
    lessons = [t.path for t in discover([ROOT / "lessons"])] + [TEMPLATE]
    for path in lessons:  # every lesson's keywords are on the list
        header, _ = nbcheck.parse_header("".join(nbformat.read(str(path), 4).cells[0].source))
        assert header, f"{path} has no header cell"
        assert not [k for k in header["__keywords__"] if k.lower() not in words], path


@pytest.mark.unit
def test_template_is_complete():
    nb = nbformat.read(str(TEMPLATE), 4)
    text = "\n".join(c.source for c in nb.cells)
    for anchor in ("goals", "summary", "attribution", "import", "auth", "chapter1", "resources"):
        assert f'id="{anchor}"' in text and f"(#{anchor})" in text, anchor
    assert "from starbox import authClient as ac, queryClient as qc, storeClient as sc" in text
    assert "Fitzpatrick et al. 2014" in text and "SPIE 9149" in text
    assert nbcheck.check_structure(nb) == [] and nbcheck.check_secrets(nb) == [] and nbcheck.check_outputs(nb) == []
    guide = (TEMPLATE.parent / "CONTRIBUTING.md").read_text()
    for rule in ("05_Contrib/<Rubric>/<Case>/", "keywords.txt", "No passwords or tokens", "Clear the outputs",
                 "starbox nbcheck", "pull request", "getlatest"):
        assert rule in guide, rule


@pytest.mark.system
def test_template_passes_with_a_real_run(env, tree):
    """Copied into its own folder and renamed, the template passes every check, including a run of
    all its queries against the appliance."""
    case = tree / "05_Contrib" / "Galactic" / "HipparcosHR"
    case.mkdir(parents=True)
    target = case / "HipparcosHR.ipynb"
    shutil.copy(TEMPLATE, target)
    (case / "small_table.csv").write_text("a,b\n1,2\n")
    proc = nbcheck_cli(env, target)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{target}: OK" in proc.stdout and "1 notebook(s) ready to contribute" in proc.stdout
    # Where it ships, in 05_Contrib itself, only its name and place are wrong.
    proc = nbcheck_cli(env, "--no-run", "--json", TEMPLATE)
    problems = json.loads(proc.stdout)[0]["problems"]
    assert proc.returncode == 1 and [p.split(":")[0] for p in problems] == ["name", "location"], problems


def bad_notebook(path: Path) -> Path:
    """Every mistake the rules name, once each."""
    cells = [
        new_code_cell("__author__ = 'Jane Author'\n__version__ = '2021-11-18'\n"
                      "__datasets__ = ['smash_dr1', 'hipparcos.main']\n__keywords__ = ['tutorial', 'astrology'],"),
        new_markdown_cell("Not a title, and no sections."),
        new_code_cell("1/0"),
        new_code_cell(f"token = '{TOKEN}'"),
        new_code_cell("ac.login('jane', 'hunter2')"),
        new_code_cell("headers = {'X-DL-Password': 'hunter2'}"),
        new_code_cell("print(r.request.headers)", execution_count=7, outputs=[
            new_output("stream", name="stdout", text="X-DL-Password: hunter2\nUser-Agent: x\n")]),
        new_code_cell("gh = 'ghp_" + "a1" * 18 + "'"),
    ]
    spec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": spec}), str(path))
    return path


@pytest.mark.system
def test_bad_notebook_every_problem_on_one_line(service, env, tree):
    path = bad_notebook(tree / "MyBadNotebook.ipynb")  # not in 05_Contrib/<Rubric>/<Case>/
    proc = nbcheck_cli(env, "--timeout", "60", path)
    assert proc.returncode == 1
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(f"{path}: ")]
    problems = [ln.removeprefix(f"{path}: ") for ln in lines]
    expected = [
        "header: __author__ 'Jane Author' has no e-mail; write it as 'Name <you@example.org>'",
        "header: __version__ '2021-11-18' is not a yyyymmdd date",
        "header: dataset 'smash_dr1' is not in this appliance",
        "header: keyword 'astrology' is not in",
        "structure: the cell after the header must be the title",
        "structure: no '# Goals' section",
        "structure: no '# Resources and references' section",
        "secrets: cell 3 has a token or key literal in its source",
        "secrets: cell 3 has a Starbox/Data Lab login token in its source",
        "secrets: cell 4 has a password passed to login() in its source",
        "secrets: cell 5 has an X-DL-Password header with a password in its source",
        "secrets: cell 6 has an X-DL-Password header with a password in its output",
        "secrets: cell 7 has a GitHub token in its source",
        "outputs: 1 cell(s) have outputs or execution counts (cells 6)",
        "location: put the notebook in its own folder, 05_Contrib/<Rubric>/<Case>/MyBadNotebook.ipynb",
        "run: cell 2 (1/0) failed with ZeroDivisionError: division by zero",
    ]
    for start in expected:
        assert any(p.startswith(start) for p in problems), f"{start!r} not in:\n" + "\n".join(problems)
    assert not any("hipparcos.main" in p for p in problems)  # it exists
    assert not any("tutorial" in p for p in problems)
    assert all(";" in p for p in problems)  # every line says how to fix it
    assert "hunter2" not in proc.stdout and TOKEN not in proc.stdout  # reports never repeat a secret
    assert proc.stdout.splitlines()[-1].startswith(f"{len(problems)} problem(s) in 1 of 1 notebook(s)")


@pytest.mark.system
def test_header_location_and_file_problems(service, tree, tmp_path):
    s = service.settings
    case = tree / "05_Contrib" / "Galactic" / "Shared"
    spec = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    late = case / "late_header.ipynb"
    case.mkdir(parents=True)
    nbformat.write(new_notebook(cells=[new_markdown_cell("# Title"), new_code_cell(
        "__author__ = 'A <a@b.org>'\n__version__ = '20240101'\n__datasets__ = []\n__keywords__ = ['sql']")],
        metadata=spec), str(late))
    missing = case / "no_fields.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell("__author__ = 'A <a@b.org>'\n__version__ = 20241399")],
                                metadata=spec), str(missing))
    broken = case / "broken.ipynb"
    broken.write_text("{not json")
    reports = nbcheck.check([late, missing, broken, case / "absent.ipynb"], s, run=False)
    by_name = {r.path.name: r.problems for r in reports}
    assert by_name["late_header.ipynb"][0].startswith("header: the header is cell 1; move it to the top")
    assert any(p.startswith("location: Shared/ also holds broken.ipynb, no_fields.ipynb")
               for p in by_name["late_header.ipynb"])
    missing_problems = by_name["no_fields.ipynb"]
    assert any(p.startswith("header: __datasets__ is missing; add e.g.") for p in missing_problems)
    assert any(p.startswith("header: __keywords__ is missing") for p in missing_problems)
    assert any(p.startswith("header: __version__ 20241399 is not a yyyymmdd date") for p in missing_problems)
    assert by_name["broken.ipynb"][0].startswith("file: invalid JSON")
    assert by_name["absent.ipynb"][0].startswith("file: ") and "does not exist" in by_name["absent.ipynb"][0]
    named = tree / "05_Contrib" / "Galactic" / "Mine" / "MyTemplate.ipynb"
    named.parent.mkdir(parents=True)
    shutil.copy(TEMPLATE, named)
    assert [p for p in nbcheck.check_location(named)] == [
        "name: rename MyTemplate.ipynb to say what the notebook does; files named *Template* are skipped by "
        "`starbox nbtest`"]


@pytest.mark.unit
def test_secret_patterns_spare_safe_code():
    safe = new_notebook(cells=[
        new_code_cell("token = ac.login(input('user: '), getpass('password: '))"),
        new_code_cell("password = getpass()\nr = ac.login(user, password)"),
        new_code_cell("tok = 'anonymous.0.0.anon_access'"),
        new_code_cell("headers = {'X-DL-Password': pw}"),
        new_markdown_cell("Never write your password: use getpass."),
    ])
    assert nbcheck.check_secrets(safe) == []
