"""The Voilà apps run top to bottom as notebooks against the live service, logged in as the
local user, and reach their working state (no plain-language error message on screen).

The browser side (widgets render, sliders and buttons change the page) is tests/test_browser.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

import starbox.notebooks as nbt
from starbox import database, jupyter

APPS_DIR = Path(__file__).resolve().parents[1] / "voila_apps"
APPS = sorted(p.name for p in APPS_DIR.glob("*.ipynb"))
NEEDS = {"hidden_galaxy.ipynb": "smash_sim.object", "light_curve.ipynb": "smash_sim.source",
         "hr_diagram.ipynb": "hipparcos.main", "sky_explorer.ipynb": "openngc.objects"}


def missing_table(settings, app: str) -> str | None:
    table = NEEDS.get(app)
    if not table:
        return None
    with database.connect_admin(settings) as conn:
        found = conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0]
    return None if found else table


# Run before each app (starbox nbtest's --prerun): after every cell, print the app's message box
# and the size of its picture, so the executed copy shows the state the student would see.
REPORT = """
def _starbox_report(result):
    g = get_ipython().user_ns
    status, image = g.get("status"), g.get("image")
    if status is not None and hasattr(status, "value") and image is not None and hasattr(image, "value"):
        print("STARBOX-STATUS", status.value)
        print("STARBOX-IMAGE", len(image.value))
get_ipython().events.register("post_run_cell", _starbox_report)
"""


@pytest.fixture(scope="module")
def executed(service, output_dir, tmp_path_factory):
    """Every app notebook run once (two kernels at a time), as the appliance's kernels would run."""
    settings = service.settings
    token = jupyter.ensure_local_user(settings)
    home = jupyter.state_dir(settings) / "home"  # the kernels' HOME, as under `starbox up`
    home.mkdir(parents=True, exist_ok=True)
    keep = output_dir / "voila_apps"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STARBOX_URL", settings.service_url)
        mp.setenv("STARBOX_TOKEN", token)
        mp.setenv("STARBOX_HOME", str(settings.home))
        mp.setenv("HOME", str(home))  # a developer's ~/.datalab login must not win over the token
        prerun = tmp_path_factory.mktemp("prerun") / "report.py"
        prerun.write_text(REPORT)
        frame = nbt.test([APPS_DIR / a for a in APPS if not missing_table(settings, a)],
                         jobs=2, timeout=180, prerun=prerun, keep_executed=keep)
    return {Path(r.path).name: r for r in frame.attrs["results"]}


@pytest.mark.unit
def test_there_are_four_apps():
    assert APPS == ["hidden_galaxy.ipynb", "hr_diagram.ipynb", "light_curve.ipynb", "sky_explorer.ipynb"]


@pytest.mark.system
@pytest.mark.parametrize("app", APPS)
def test_app_notebook(app, executed, service):
    table = missing_table(service.settings, app)
    if table:
        pytest.skip(f"{table} is not loaded in the test appliance")
    result = executed[app]
    assert result.status == "PASS", f"{result.error}\n{result.traceback}"
    nb = nbformat.read(result.executed_path, as_version=4)
    report = "".join(out.get("text", "") for cell in nb["cells"] if cell["cell_type"] == "code"
                     for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    assert "Traceback" not in json.dumps(nb)
    assert nb["cells"][-1]["cell_type"] == "markdown"
    lines = [ln for ln in report.splitlines() if ln.startswith("STARBOX-")]
    assert lines, "the app made no status message and no picture"
    status, image = lines[-2], lines[-1]
    # The apps catch their own failures and show them as a message box: it must not be an error.
    assert "starbox-message error" not in status, status
    assert "starbox-message" in status
    assert int(image.split()[1]) > 10_000, "the app drew no picture"


@pytest.mark.unit
@pytest.mark.parametrize("app", APPS)
def test_app_hides_nothing_it_should_show(app):
    """Voilà shows markdown and outputs only: the instructions must be in markdown cells."""
    nb = nbformat.read(APPS_DIR / app, as_version=4)
    kinds = [c["cell_type"] for c in nb["cells"]]
    assert kinds[0] == "markdown" and nb["cells"][0]["source"].startswith("# ")
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert nb["metadata"].get("title")
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            assert not cell.get("outputs"), "app notebooks are stored without outputs"


@pytest.mark.unit
@pytest.mark.parametrize("app", APPS)
def test_app_has_no_formulas(app):
    """Voilà's pages run without a LaTeX typesetter (starbox.jupyter: MathJax cost every page
    ~1 MB of JavaScript), so an app's words must not rely on $...$ or \\(...\\) math."""
    nb = nbformat.read(APPS_DIR / app, as_version=4)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            assert "$" not in cell["source"] and "\\(" not in cell["source"], cell["source"][:80]
        else:
            for text in re.findall(r"description=\"([^\"]*)\"", cell["source"]):
                assert "$" not in text, text
