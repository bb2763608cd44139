"""Issue 5's benchmarks: how fast a Voilà app becomes interactive, and what the appliance weighs.

* Time to first interactive page: from asking for the page to the app's widgets being in the DOM
  (its picture, an ipywidgets Image, is the last widget to arrive), in Debian's headless Chromium
  driven by Playwright. For each app, p50 and p95 of `loads` page loads from a Voilà with
  pre-heated kernels (each load waits until the pool is warm again: what a student gets when the
  pool keeps up), on Starbox's light page and on Voilà's own front end (the `starbox-lab`
  template), and from a Voilà without pre-heated kernels (a kernel is started and the notebook
  run per page).
  The same is measured for a one-slider notebook: the bare cost of a Voilà page on this machine,
  which no app can beat; the ratio column is against it (absolute times don't compare across
  machines). One browser profile is used throughout, so after the first page its cache is warm,
  as for a student opening a second app.
* Memory of the running appliance, each part with its children (kernels, PostgreSQL's backends):
  PostgreSQL, the service, JupyterLab, Voilà with its pool; at rest, with 10 app pages open, and
  after they are closed (Voilà then shuts their kernels down). RSS counts shared pages once per
  process, so its total is an upper bound; USS is what each process holds alone (a lower bound).

`main(settings)` expects the appliance's database and service to be running (as under `make up`);
if its JupyterLab and Voilà are not listening, it starts them with starbox.jupyter.children.
"""

from __future__ import annotations

import dataclasses
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import psutil
from starbox import jupyter
from starbox.settings import Settings

from bench.common import console, free_port, p50_p95, report

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BARE = "bare_one_slider.ipynb"
READY = {BARE: ".widget-slider"}  # what "interactive" means per notebook; apps: their picture
APP_READY = "img.widget-image"
MB = 1024 * 1024


def _bare_notebook(path: Path) -> None:
    cell = nbformat.v4.new_code_cell("import ipywidgets as W\nW.FloatSlider(description='bare')")
    nb = nbformat.v4.new_notebook(
        cells=[cell], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nbformat.write(nb, str(path))


def _tti(context, url: str, selector: str) -> float:
    page = context.new_page()
    try:
        t0 = time.perf_counter()
        page.goto(url, wait_until="commit", timeout=180_000)
        page.wait_for_selector(selector, state="attached", timeout=180_000)
        return time.perf_counter() - t0
    finally:
        page.close(run_before_unload=True)  # Voilà then shuts the page's kernel down


def _loads(context, settings: Settings, notebook: str, loads: int, preheat: bool) -> list[float]:
    url = jupyter.app_url(settings, notebook)
    selector = READY.get(notebook, APP_READY)
    _tti(context, url, selector)  # warm-up: the browser cache, Voilà's templates
    out = []
    for _ in range(loads):
        if preheat:
            jupyter.wait_warm(settings, timeout=300)
        else:
            time.sleep(0.5)
        out.append(_tti(context, url, selector))
    return out


# The Voilàs measured, one after the other: (label, template, pre-heated kernels).
RUNS = [("light", None, True), ("Voilà's front end", "starbox-lab", True), ("cold", None, False)]


def bench_time_to_interactive(settings: Settings, browser, loads: int = 10) -> list[list]:
    apps = sorted(p.name for p in jupyter.apps_dir(settings).glob("*.ipynb"))
    with tempfile.TemporaryDirectory(prefix="starbox-voila-bench-") as tmp:
        root = Path(tmp)
        for app in apps:
            shutil.copy(jupyter.apps_dir(settings) / app, root / app)
        _bare_notebook(root / BARE)
        results: dict[str, dict[str, list[float]]] = {}
        for label, template, preheat in RUNS:
            s = dataclasses.replace(settings, voila_port=free_port())
            child = jupyter.voila_child(
                s,
                preheat=preheat,
                pool_size=1,
                root=root,
                template=template,
                name=f"voila-bench-{label.split()[0].lower()}",
            )
            child.start(s, timeout=120)
            try:
                if preheat:
                    jupyter.wait_warm(s, timeout=300)
                context = browser.new_context(viewport={"width": 1280, "height": 1000})
                for nb in [BARE, *apps]:
                    samples = _loads(context, s, nb, loads, preheat)
                    results.setdefault(nb, {})[label] = samples
                    console.print(f"  {nb}: {label} p50 {statistics.median(samples):.2f} s")
                context.close()
            finally:
                child.stop()
    bare = statistics.median(results[BARE]["light"])
    rows = []
    for nb in [BARE, *apps]:
        hot50, hot95 = p50_p95(results[nb]["light"])
        voila50, _ = p50_p95(results[nb]["Voilà's front end"])
        cold50, cold95 = p50_p95(results[nb]["cold"])
        rows.append([nb.removesuffix(".ipynb"), hot50, hot95, voila50, hot50 / voila50, cold50, cold95, hot50 / bare])
    report(
        f"Voilà: seconds to the first interactive page ({loads} loads each; headless Chromium). "
        "Starbox's light page pre-heated, Voilà's own front end (starbox-lab) pre-heated, and the "
        "light page with a cold kernel",
        [
            "notebook",
            "pre-heated p50",
            "pre-heated p95",
            "Voilà's front end p50",
            "light / Voilà's",
            "cold kernel p50",
            "cold kernel p95",
            "pre-heated / bare",
        ],
        rows,
        "voila_time_to_interactive",
    )
    return rows


# --- memory -------------------------------------------------------------------------------------


def _listening(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def _postmaster(settings: Settings) -> psutil.Process | None:
    try:
        return psutil.Process(int((settings.pgdata / "postmaster.pid").read_text().split()[0]))
    except (OSError, ValueError, IndexError, psutil.Error):
        return None


def _tree_mem(proc: psutil.Process | None) -> tuple[float, float, int]:
    """MB of RSS and of USS (memory only this process holds) of the process and its descendants,
    and how many processes that is."""
    if proc is None:
        return 0.0, 0.0, 0
    rss = uss = count = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            info = p.memory_full_info()
            rss, uss, count = rss + info.rss, uss + info.uss, count + 1
        except psutil.Error:
            pass
    return rss / MB, uss / MB, count


def _snapshot(settings: Settings) -> dict[str, tuple[float, float, int]]:
    return {
        "PostgreSQL": _tree_mem(_postmaster(settings)),
        "service": _tree_mem(_listening(settings.service_port)),
        "JupyterLab": _tree_mem(_listening(settings.jupyter_port)),
        "Voilà with its pool": _tree_mem(_listening(settings.voila_port)),
    }


def bench_memory(settings: Settings, browser, pages: int = 10) -> list[list]:
    jupyter.wait_warm(settings, timeout=300)
    time.sleep(2)
    rest = _snapshot(settings)
    apps = sorted(p.name for p in jupyter.apps_dir(settings).glob("*.ipynb"))
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    opened = []
    for i in range(pages):
        page = context.new_page()
        page.goto(jupyter.app_url(settings, apps[i % len(apps)]), timeout=180_000)
        page.wait_for_selector(APP_READY, state="attached", timeout=180_000)
        opened.append(page)
    jupyter.wait_warm(settings, timeout=300)
    time.sleep(2)
    busy = _snapshot(settings)
    for page in opened:
        page.close(run_before_unload=True)
    deadline = time.monotonic() + 60  # Voilà shuts each closed page's kernel down
    while (
        time.monotonic() < deadline and _snapshot(settings)["Voilà with its pool"][2] > rest["Voilà with its pool"][2]
    ):
        time.sleep(1)
    context.close()
    jupyter.wait_warm(settings, timeout=300)
    after = _snapshot(settings)
    rows = []
    for part in rest:
        rows.append(
            [
                part,
                rest[part][0],
                rest[part][1],
                rest[part][2],
                busy[part][0],
                busy[part][1],
                busy[part][2],
                after[part][0],
            ]
        )
    rows.append(
        [
            "total",
            *(
                sum(snap[p][i] for p in snap)
                for snap, i in ((rest, 0), (rest, 1), (rest, 2), (busy, 0), (busy, 1), (busy, 2), (after, 0))
            ),
        ]
    )
    report(
        f"Appliance memory (MB, each part with its children): at rest, with {pages} app pages open, "
        "after closing them. RSS counts shared pages in every process; USS only what each holds alone",
        [
            "part",
            "rest RSS",
            "rest USS",
            "processes",
            f"{pages} open RSS",
            f"{pages} open USS",
            "processes",
            "closed RSS",
        ],
        rows,
        "appliance_memory",
    )
    return rows


def main(settings: Settings, loads: int = 10) -> None:
    from playwright.sync_api import sync_playwright

    console.print("[bold]Voilà and JupyterLab benchmarks[/]")
    started = []
    if _listening(settings.voila_port) is None or _listening(settings.jupyter_port) is None:
        console.print("  JupyterLab and Voilà are not running: starting them")
        for child in jupyter.children(settings):
            child.start(settings, timeout=120)
            started.append(child)
    else:
        jupyter.ensure_local_user(settings)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                bench_memory(settings, browser)
                bench_time_to_interactive(settings, browser, loads=loads)
            finally:
                browser.close()
    finally:
        for child in reversed(started):
            child.stop()


if __name__ == "__main__":
    from starbox import settings as settings_mod

    main(settings_mod.get())
