"""`starbox nbtest`: discovery, failure classification, parallel runs, reports, CLI.

The notebooks are built here with nbformat: a failing one, a hanging one, one
that kills its kernel, one that asks for a kernel that is not installed and a
good one, numbered so the good one comes last and a serial run proves that
each failure left the rest running.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from typer.testing import CliRunner

import starbox.notebooks as nbt
from starbox.notebooks.cli import app
from starbox.notebooks.discover import discover

TIMEOUT = 5  # seconds per cell; the hanging notebook sleeps for 600


def make_nb(path: Path, *sources: str, kernel: str = "python3") -> Path:
    """Cells from strings; a string starting with '# md' becomes a markdown cell."""
    cells = [new_markdown_cell(s) if s.startswith("# md") else new_code_cell(s) for s in sources]
    spec = {"name": kernel, "display_name": kernel, "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(new_notebook(cells=cells, metadata={"kernelspec": spec}), str(path))
    return path


def make_suite(root: Path) -> Path:
    make_nb(root / "01_failing.ipynb", "a = 1", "# md\nexplanation", "1/0", "b = 2")
    make_nb(root / "02_hanging.ipynb", "import time\ntime.sleep(600)")
    make_nb(root / "03_dies.ipynb", "x = 1", "import os\nos._exit(1)")
    make_nb(root / "04_nokernel.ipynb", "print('never')", kernel="no-such-kernel-xyz")
    make_nb(root / "05_good.ipynb", "import time\ntime.sleep(0.3)", "# md\nnotes", "print(1 + 1)")
    return root


EXPECTED = {
    "01_failing.ipynb": ("FAIL", 2),
    "02_hanging.ipynb": ("TIMEOUT", 0),
    "03_dies.ipynb": ("DEAD KERNEL", 1),
    "04_nokernel.ipynb": ("NO KERNEL", None),
    "05_good.ipynb": ("PASS", None),
}


def execution_times(nb_path: Path) -> list[datetime]:
    """When each cell started, as recorded by nbclient in the executed copy."""
    nb = nbformat.read(str(nb_path), as_version=4)
    stamps = [c.metadata.get("execution", {}).get("iopub.execute_input") for c in nb.cells]
    return [datetime.fromisoformat(s.replace("Z", "+00:00")) for s in stamps if s]


@pytest.mark.unit
def test_discovery_exclusions_and_ignore_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "lessons"
    for name in ["a.ipynb", "sub/b.ipynb", "sub/deep/c.ipynb",
                 # skipped by default: executed copies, checkpoints, templates, hidden folders
                 "a.nbconvert.ipynb", "a-executed.ipynb", "a_tested.ipynb", "DataLabNotebookTemplate.ipynb",
                 ".ipynb_checkpoints/a-checkpoint.ipynb", ".hidden/h.ipynb",
                 # skipped by the ignore files and --exclude below
                 "scratch_1.ipynb", "sub/deep/scratch_2.ipynb", "wip/w.ipynb", "sub/only_here.ipynb",
                 "sub/slow/s.ipynb"]:
        make_nb(root / name, "1")
    (root / "notes.txt").write_text("not a notebook")
    (root / ".nbtestignore").write_text("# comment line\n\nscratch_*.ipynb\nwip/\n")
    (root / "sub" / ".nbtestignore").write_text("/only_here.ipynb\n")

    names = [t.name for t in discover([root], exclude=["**/slow/"])]
    assert names == ["lessons/a.ipynb", "lessons/sub/b.ipynb", "lessons/sub/deep/c.ipynb"]
    # Anchored ignore rules stay in their folder; a named file is always tested.
    assert [t.name for t in discover([root / "sub" / "deep"])] == ["lessons/sub/deep/c.ipynb"]
    assert [t.name for t in discover(["lessons/a.nbconvert.ipynb"])] == ["lessons/a.nbconvert.ipynb"]
    # The executed-copy folder is never searched, so a second run does not test copies.
    assert "lessons/sub/b.ipynb" not in [t.name for t in discover([root], skip=[root / "sub"])]


@pytest.mark.unit
def test_bad_input_gives_error_rows_not_tracebacks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "broken.ipynb").write_text("{ not json")
    (tmp_path / "data.ipynb").write_text(json.dumps({"rows": [1, 2]}))
    (tmp_path / "script.py").write_text("print(1)\n")
    args = ["missing_dir", "broken.ipynb", "data.ipynb", "script.py"]

    df = nbt.test(args, keep_executed=tmp_path / "out")
    assert list(df.status) == ["ERROR"] * 4
    assert df.error.tolist() == [
        "no such file or folder: missing_dir",
        "invalid JSON: Expecting property name enclosed in double quotes at line 1, column 3",
        "not a notebook: the JSON has no 'nbformat' key",
        "not a notebook (expected a .ipynb file): script.py",
    ]

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the default copy folder goes
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "ERROR" in result.output
    assert f"Executed copies: {tmp_path}/starbox-nbtest-" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)

    missing = CliRunner().invoke(app, ["--prerun", "nope.py", str(tmp_path)])
    assert missing.exit_code == 2
    assert missing.output.strip() == "error: prerun file not found: nope.py"

    empty = CliRunner().invoke(app, [str(tmp_path / "out")])
    assert empty.exit_code == 1 and "No notebooks found" in empty.output


@pytest.mark.system
def test_serial_run_classifies_failures_and_keeps_going(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_suite(tmp_path / "suite")
    keep = tmp_path / "executed"

    df = nbt.test(["suite"], timeout=TIMEOUT, keep_executed=keep)

    assert list(df.columns) == ["notebook", "status", "duration_s", "failed_cell", "error", "executed_path"]
    assert str(df.failed_cell.dtype) == "Int64"
    results = {Path(r.notebook).name: r for r in df.attrs["results"]}
    assert {name: (r.status, r.failed_cell) for name, r in results.items()} == EXPECTED
    assert df.status.tolist() == [status for status, _ in EXPECTED.values()]

    failing = results["01_failing.ipynb"]
    assert (failing.ename, failing.evalue) == ("ZeroDivisionError", "division by zero")
    assert failing.failed_source == "1/0" and "\x1b[" not in failing.traceback
    assert "ZeroDivisionError" in failing.traceback
    assert "no-such-kernel-xyz" in results["04_nokernel.ipynb"].error
    assert "python3" in results["04_nokernel.ipynb"].error  # lists what is available
    assert TIMEOUT <= results["02_hanging.ipynb"].duration_s < TIMEOUT + 20

    # Per-cell durations: code cells only, indices as in the file.
    good = results["05_good.ipynb"]
    assert [c.index for c in good.cells] == [0, 2]
    assert good.cells[0].seconds >= 0.3 > good.cells[1].seconds
    assert [c.index for c in failing.cells] == [0, 2]

    # Serial: each notebook started after the previous one finished.
    ordered = df.attrs["results"]
    for before, after in zip(ordered, ordered[1:]):
        assert after.started_at >= before.started_at + before.duration_s - 0.05

    # Executed copies mirror the relative paths and hold what ran.
    assert (keep / "suite" / "05_good.ipynb").is_file()
    copy = nbformat.read(str(keep / "suite" / "05_good.ipynb"), as_version=4)
    assert copy.cells[2].outputs[0].text == "2\n"
    copy = nbformat.read(str(keep / "suite" / "01_failing.ipynb"), as_version=4)
    assert copy.cells[2].outputs[0].ename == "ZeroDivisionError"
    assert copy.cells[3].execution_count is None  # nothing runs after the failing cell
    assert (keep / "suite" / "03_dies.ipynb").is_file()
    assert df.set_index("notebook").executed_path.isna()["suite/04_nokernel.ipynb"]


@pytest.mark.system
def test_parallel_cli_with_reports(tmp_path):
    suite = make_suite(tmp_path / "suite")
    make_nb(suite / "05_good.nbconvert.ipynb", "1/0")  # an executed copy: skipped by default
    make_nb(suite / "drafts" / "draft.ipynb", "1/0")
    (suite / ".nbtestignore").write_text("# work in progress\ndrafts/\n")
    make_nb(suite / "06_excluded.ipynb", "1/0")
    junit, html, keep = tmp_path / "report.xml", tmp_path / "report.html", tmp_path / "copies"

    proc = subprocess.run(
        [sys.executable, "-m", "starbox.notebooks.cli", "suite", "--jobs", "2", "--timeout", str(TIMEOUT),
         "--exclude", "06_*.ipynb", "--junit", str(junit), "--html", str(html), "--keep-executed", str(keep)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "5 notebooks: 1 passed, 1 FAIL, 1 TIMEOUT, 1 DEAD KERNEL, 1 NO KERNEL" in " ".join(proc.stdout.split())

    # JUnit: one testcase per notebook; environment problems are errors, the rest failures.
    suite_el = ET.parse(junit).getroot().find("testsuite")
    assert (suite_el.get("tests"), suite_el.get("failures"), suite_el.get("errors")) == ("5", "3", "1")
    cases = {c.get("name"): c for c in suite_el.iter("testcase")}
    assert sorted(cases) == sorted(EXPECTED)
    assert cases["05_good.ipynb"].find("failure") is None
    failure = cases["01_failing.ipynb"].find("failure")
    assert failure.get("type") == "FAIL" and "cell 2" in failure.get("message")
    assert "ZeroDivisionError: division by zero" in failure.text
    assert cases["02_hanging.ipynb"].find("failure").get("type") == "TIMEOUT"
    assert cases["03_dies.ipynb"].find("failure").get("type") == "DEAD KERNEL"
    assert cases["04_nokernel.ipynb"].find("error").get("type") == "NO KERNEL"
    assert "cell 0:" in cases["05_good.ipynb"].find("system-out").text

    # HTML: self-contained, with statuses, per-cell durations and the traceback.
    page = html.read_text()
    assert "<style>" in page and "<script" not in page and "<link" not in page
    for status in ("PASS", "FAIL", "TIMEOUT", "DEAD KERNEL", "NO KERNEL"):
        assert f">{status}</span>" in page
    assert "Cell durations" in page and "ZeroDivisionError" in page and "\x1b[" not in page

    # Parallel: other notebooks ran while the hanging cell was blocked.
    hang_start = execution_times(keep / "suite" / "02_hanging.ipynb")[0]
    others = [t for n in ("01_failing", "03_dies", "05_good") for t in execution_times(keep / "suite" / f"{n}.ipynb")]
    assert any(0 < (t - hang_start).total_seconds() < TIMEOUT for t in others)
    assert not (keep / "suite" / "drafts").exists() and not (keep / "suite" / "06_excluded.ipynb").exists()


@pytest.mark.system
def test_prerun_kernel_override_and_success_exit_code(tmp_path):
    secret = "s3cr3t-t0ken-xyz"
    (tmp_path / "prerun.py").write_text(f"# log in first\nDATALAB_TOKEN = {secret!r}\n")
    # The notebook names a kernel that is missing here; --kernel overrides it.
    make_nb(tmp_path / "nb" / "uses_login.ipynb", "assert len(DATALAB_TOKEN) == 16", "print('ok')",
            kernel="no-such-kernel-xyz")
    keep = tmp_path / "copies"

    proc = subprocess.run(
        [sys.executable, "-m", "starbox.notebooks.cli", "nb", "--prerun", "prerun.py", "--kernel", "python3",
         "--keep-executed", str(keep)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout and "1 notebook: 1 passed" in " ".join(proc.stdout.split())
    copy = (keep / "nb" / "uses_login.ipynb").read_text()
    assert secret not in copy  # the prerun code (a login) is not saved in the executed copy
    assert len(nbformat.reads(copy, as_version=4).cells) == 2

    # Without the prerun the same notebook fails in its first cell.
    df = nbt.test(tmp_path / "nb", kernel="python3", keep_executed=tmp_path / "copies2")
    assert (df.status[0], df.failed_cell[0]) == ("FAIL", 0) and "NameError" in df.error[0]

    # A failing prerun is reported as such, not as a failure of cell 0.
    (tmp_path / "bad_prerun.py").write_text("raise RuntimeError('login refused')\n")
    df = nbt.test(tmp_path / "nb", kernel="python3", prerun=tmp_path / "bad_prerun.py",
                  keep_executed=tmp_path / "copies3")
    assert df.status[0] == "FAIL" and df.failed_cell.isna()[0]
    assert df.error[0] == "prerun bad_prerun.py failed: RuntimeError: login refused"


@pytest.mark.system
def test_broken_kernels(tmp_path, monkeypatch):
    """A kernelspec whose program is gone, and a kernel that dies while starting."""
    for name, argv in {"gone": ["/nonexistent/python", "{connection_file}"],
                       "crashy": [sys.executable, "-c", "import sys; sys.exit('boom at start')"]}.items():
        (tmp_path / "kernels" / name).mkdir(parents=True)
        (tmp_path / "kernels" / name / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": name, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    nb = make_nb(tmp_path / "nb.ipynb", "1")

    gone = nbt.run(nb, kernel="gone", keep_executed=tmp_path / "a").results[0]
    assert gone.status == "NO KERNEL" and "/nonexistent/python" in gone.error
    crashy = nbt.run(nb, kernel="crashy", keep_executed=tmp_path / "b").results[0]
    assert crashy.status == "DEAD KERNEL" and "died while starting" in crashy.error
    assert "boom at start" in crashy.traceback  # the kernel's own last words, from its log


@pytest.mark.system
def test_callable_from_a_notebook(tmp_path, monkeypatch):
    """starbox.notebooks.test inside a kernel (whose main thread runs an event loop)."""
    monkeypatch.chdir(tmp_path)
    make_nb(tmp_path / "inner" / "good.ipynb", "x = 1")
    make_nb(tmp_path / "inner" / "bad.ipynb", "raise ValueError('inner failure')")
    make_nb(tmp_path / "outer.ipynb",
            "import starbox.notebooks\n"
            "df = starbox.notebooks.test('inner', jobs=2, keep_executed='inner_copies')\n"
            "assert df.status.tolist() == ['FAIL', 'PASS'], df\n"
            "assert df.error[0] == 'ValueError: inner failure'")

    df = nbt.test("outer.ipynb", keep_executed="outer_copies")
    assert df.status.tolist() == ["PASS"], df.error.tolist()
    assert (tmp_path / "inner_copies" / "inner" / "bad.ipynb").is_file()


@pytest.mark.unit
@pytest.mark.parametrize("jobs", [0, -1])
def test_jobs_must_be_positive(tmp_path, jobs):
    result = CliRunner().invoke(app, [str(tmp_path), "--jobs", str(jobs)])
    assert result.exit_code == 2 and "Traceback" not in result.output
