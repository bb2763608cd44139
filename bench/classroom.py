"""Issue 14's benchmark: class day. A class opens the same app within a few seconds and plays with it.

* Voilà: `students` browser contexts in one headless Chromium (Debian's, driven by Playwright) open
  the HR diagram builder at moments spread over `spread` seconds, as a class does when the teacher
  says "open the app". For each: the time to interactive (from asking for the page to the app's
  picture being drawn), then five slider changes, each timed from the new value being entered to
  the new picture arriving; errors (a page error, a 5xx answer, an error box, a page that never
  became interactive, a change that never arrived). Memory of the appliance (each part with its
  children) at rest, with the class's pages open, and after they close (Voilà shuts their kernels
  down). The same is measured for one student alone on the same machine in the same run: the
  ratio column is against it. The class's pool is planned first (`starbox apps prewarm`), as a
  teacher does before the bell.
* Shared mode: see `hub_class` (30 class accounts log in through the hub's login form within a
  minute; each lab must answer).

The students' browsers run on this machine too, so they take CPU from the appliance: a real class
brings its own computers. The numbers are an upper bound on what a class waits.

`run_class` is also what tests/test_classroom.py drives with a class of five.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import threading
import time

import psutil
from starbox import jupyter
from starbox.jupyter import pools
from starbox.settings import Settings

from bench.common import console, p50_p95, report

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
APP = "hr_diagram.ipynb"
PICTURE = "img.widget-image"
SLIDER = "closer than"  # the label of the slider each student moves
VALUES = ["20", "40", "80", "160", "320", "640", "30", "60"]  # parsecs; each differs from the last
MB = 1024 * 1024


@dataclasses.dataclass
class Student:
    tti: float | None = None  # s from asking for the page to the picture being drawn
    changes: list[float] = dataclasses.field(default_factory=list)  # s per slider change
    errors: list[str] = dataclasses.field(default_factory=list)


async def _picture(page) -> str:
    return await page.locator(PICTURE).first.get_attribute("src") or ""


async def _change(page, value: str, timeout_ms: float) -> float:
    """Enter a new distance in the slider's readout; seconds until the picture changes."""
    before = await _picture(page)
    slider = page.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=SLIDER))
    await slider.locator(".widget-readout").click()
    await page.keyboard.press("Control+A")
    await page.keyboard.type(value)
    t0 = time.perf_counter()
    await page.keyboard.press("Enter")
    await page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel); return img && img.getAttribute('src') !== old; }",
        arg=[PICTURE, before],
        timeout=timeout_ms,
    )
    return time.perf_counter() - t0


async def _student(browser, url: str, delay: float, changes: int, seed: int, timeout_s: float) -> Student:
    me = Student()
    await asyncio.sleep(delay)
    context = await browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        page = await context.new_page()
        page.on("pageerror", lambda exc: me.errors.append(f"page error: {exc}"))
        page.on(
            "response",
            lambda r: me.errors.append(f"HTTP {r.status} for {r.url}") if r.status >= 500 else None,
        )
        t0 = time.perf_counter()
        try:
            await page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
            await page.wait_for_selector(PICTURE, state="attached", timeout=timeout_s * 1000)
            await page.wait_for_function(
                "sel => !!document.querySelector(sel).getAttribute('src')",  # a blob: URL of the PNG
                arg=PICTURE,
                timeout=timeout_s * 1000,
            )
            me.tti = time.perf_counter() - t0
        except Exception as exc:  # noqa: BLE001 - the bench counts it and goes on
            me.errors.append(f"never interactive: {type(exc).__name__}")
            return me
        values = VALUES[seed % 3 :] + VALUES[: seed % 3]
        for value in values[:changes]:
            try:
                me.changes.append(await _change(page, value, timeout_s * 1000))
            except Exception as exc:  # noqa: BLE001
                me.errors.append(f"slider change to {value} never arrived: {type(exc).__name__}")
        if await page.locator(".starbox-message.error").count():
            me.errors.append("an error box: " + await page.locator(".starbox-message.error").first.inner_text())
        await page.close(run_before_unload=True)  # Voilà shuts the page's kernel down
    finally:
        await context.close()
    return me


def _browser_cpu() -> float:
    """CPU seconds of the Chromium processes this one started, with the ones that ended."""
    total = 0.0
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name():
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            pass
    return total


def _appliance_cpu(settings: Settings) -> float:
    """CPU seconds of Voilà with its kernels, the service and PostgreSQL (the ones alive now)."""
    total = 0.0
    for root in _roots(settings):
        for p in [root, *root.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    return total


@dataclasses.dataclass
class ClassRun:
    students: list[Student]
    wall: float  # s from the first page asked for to the last student done
    browser_cpu: float  # CPU seconds the students' browser took on this machine
    appliance_cpu: float  # CPU seconds of the appliance's processes (kernels that ended excepted)


async def _class(
    settings: Settings, url: str, students: int, spread: float, changes: int, timeout_s: float
) -> ClassRun:
    from playwright.async_api import async_playwright

    rng = random.Random(14)
    delays = sorted(rng.uniform(0, spread) for _ in range(students)) if students > 1 else [0.0]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            await asyncio.sleep(2)  # the browser's own start is not the class's
            cpu0, app0, t0 = _browser_cpu(), _appliance_cpu(settings), time.perf_counter()
            result = await asyncio.gather(
                *(_student(browser, url, d, changes, i, timeout_s) for i, d in enumerate(delays))
            )
            wall = time.perf_counter() - t0
            return ClassRun(list(result), wall, _browser_cpu() - cpu0, _appliance_cpu(settings) - app0)
        finally:
            await browser.close()


def _wire_student(url: str, delay: float, changes: int, seed: int, timeout_s: float) -> Student:
    from bench.wire_student import WireStudent

    me = Student()
    time.sleep(delay)
    w = WireStudent(url, timeout=timeout_s)
    try:
        me.tti = w.open()
        slider, picture = w.model("FloatLogSliderModel", SLIDER), w.model("ImageModel")
        values = VALUES[seed % 3 :] + VALUES[: seed % 3]
        for value in values[:changes]:
            me.changes.append(w.change(slider, float(value), picture))
    except Exception as exc:  # noqa: BLE001 - the bench counts it and goes on
        me.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        w.close()
    return me


def run_wire_class(
    settings: Settings, students: int, spread: float = 10.0, changes: int = 5, timeout_s: float = 120.0
) -> ClassRun:
    """The same class without browsers (bench/wire_student.py): the appliance's own answer times."""
    from concurrent.futures import ThreadPoolExecutor

    rng = random.Random(14)
    delays = sorted(rng.uniform(0, spread) for _ in range(students)) if students > 1 else [0.0]
    url = jupyter.app_url(settings, APP)
    app0, t0 = _appliance_cpu(settings), time.perf_counter()
    with ThreadPoolExecutor(max_workers=students) as pool:
        result = list(pool.map(lambda a: _wire_student(url, a[1], changes, a[0], timeout_s), enumerate(delays)))
    return ClassRun(result, time.perf_counter() - t0, 0.0, _appliance_cpu(settings) - app0)


def run_class(
    settings: Settings, students: int, spread: float = 10.0, changes: int = 5, timeout_s: float = 120.0
) -> ClassRun:
    """`students` open the app within `spread` seconds and each makes `changes` slider changes."""
    return asyncio.run(_class(settings, jupyter.app_url(settings, APP), students, spread, changes, timeout_s))


# --- memory -------------------------------------------------------------------------------------


def _listening(port: int) -> psutil.Process | None:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    return None


def _roots(settings: Settings) -> list[psutil.Process]:
    roots = [_listening(settings.voila_port), _listening(settings.service_port)]
    try:
        roots.append(psutil.Process(int((settings.pgdata / "postmaster.pid").read_text().split()[0])))
    except (OSError, ValueError, IndexError, psutil.Error):
        pass
    return [r for r in roots if r is not None]


def appliance_mb(settings: Settings) -> float:
    """MB of USS (what each process holds alone) of Voilà with its kernels, the service and
    PostgreSQL's processes: what a class adds to the box."""
    total = 0
    for root in _roots(settings):
        for p in [root, *root.children(recursive=True)]:
            try:
                total += p.memory_full_info().uss
            except psutil.Error:
                pass
    return total / MB


def voila_kernels(settings: Settings) -> int:
    return int(jupyter.pool_status(settings).get("kernels", 0))


def wait_kernels(settings: Settings, at_most: int, timeout: float) -> float:
    """Seconds until Voilà runs at most `at_most` kernels (closed pages' kernels shut down)."""
    t0 = time.monotonic()
    while voila_kernels(settings) > at_most and time.monotonic() - t0 < timeout:
        time.sleep(1)
    return time.monotonic() - t0


# --- the report ---------------------------------------------------------------------------------


def _summary(label: str, run: ClassRun, alone: tuple[float, float] | None) -> list:
    result = run.students
    ttis = [s.tti for s in result if s.tti is not None]
    changes = [c for s in result for c in s.changes]
    errors = sum(len(s.errors) for s in result)
    t50, t95 = p50_p95(ttis) if len(ttis) > 1 else ((ttis or [float("nan")])[0],) * 2
    c50, c95 = p50_p95(changes) if len(changes) > 1 else ((changes or [float("nan")])[0],) * 2
    row = [label, len(ttis), t50, t95, max(ttis, default=float("nan")), c50, c95, errors]
    row += [t95 / alone[0], c95 / alone[1]] if alone is not None else ["", ""]
    return [*row, run.browser_cpu, run.appliance_cpu, run.wall]


class Sampler:
    """Every second during a class: the appliance's memory (its peak) and each of its processes'
    CPU time (kept for the ones that end, as a class's kernels do)."""

    def __init__(self, settings: Settings):
        self.settings, self.peak, self.cpu = settings, 0.0, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self):
        self.peak = max(self.peak, appliance_mb(self.settings))
        for root in _roots(self.settings):
            for p in [root, *root.children(recursive=True)]:
                try:
                    t = p.cpu_times()
                    self.cpu[(p.pid, p.create_time())] = t.user + t.system
                except psutil.Error:
                    pass

    def _run(self):
        while not self._stop.wait(1.0):
            self._sample()

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def cpu_total(self) -> float:
        return sum(self.cpu.values())


def _one_class(settings: Settings, label: str, runner, students: int, spread: float, rest_kernels: int) -> dict:
    """Plan the pool, wait until it is full, run the class, wait until its kernels are gone."""
    pools.plan(settings, APP.removesuffix(".ipynb"), students)
    t0 = time.monotonic()
    jupyter.wait_warm(settings, timeout=900)
    filled = time.monotonic() - t0
    planned = appliance_mb(settings)
    with Sampler(settings) as sampler:
        before = sampler.cpu_total()
        run = runner(settings, students, spread=spread)
    run.appliance_cpu = sampler.cpu_total() - before  # the class's kernels that ended included
    back = wait_kernels(settings, rest_kernels, timeout=180)
    time.sleep(2)
    after = appliance_mb(settings)
    pools.plan(settings, APP.removesuffix(".ipynb"), 0)
    for st in run.students:
        for e in st.errors[:2]:
            console.print(f"  [red]{label}: {e}[/]")
    return {
        "run": run,
        "filled": filled,
        "planned": planned,
        "peak": max(sampler.peak, planned),
        "after": after,
        "back": back,
    }


def bench_voila(settings: Settings, students: int = 30, spread: float = 10.0) -> list[list]:
    jupyter.wait_warm(settings, timeout=300)
    alone_browser = run_class(settings, 1, spread=0)
    jupyter.wait_warm(settings, timeout=300)
    alone_wire = run_wire_class(settings, 1, spread=0)
    jupyter.wait_warm(settings, timeout=300)
    rest_kernels = voila_kernels(settings)
    time.sleep(2)
    rest = appliance_mb(settings)
    wire = _one_class(settings, "no browsers", run_wire_class, students, spread, rest_kernels)
    browser = _one_class(settings, "browsers", run_class, students, spread, rest_kernels)
    single_b = _summary("one student alone, in Chromium", alone_browser, None)
    single_w = _summary("one student alone, no browser", alone_wire, None)
    rows = [
        single_w,
        _summary(f"{students} students within {spread:.0f} s, no browsers", wire["run"], (single_w[3], single_w[6])),
        single_b,
        _summary(f"{students} students within {spread:.0f} s, in Chromium", browser["run"], (single_b[3], single_b[6])),
    ]
    report(
        f"Class day: {students} students open {APP} within {spread:.0f} s and each moves a slider 5 times "
        "(seconds; ratios against one student alone, same run). 'No browsers': the page's own requests "
        "and widget messages from Python (bench/wire_student.py); 'in Chromium': one headless Chromium, "
        "a context per student, on this same machine (its CPU is the browser column)",
        [
            "who",
            "interactive",
            "TTI p50",
            "TTI p95",
            "TTI max",
            "change p50",
            "change p95",
            "errors",
            "TTI p95 / alone",
            "change p95 / alone",
            "browser CPU s",
            "appliance CPU s",
            "wall s",
        ],
        rows,
        "classroom_voila",
    )
    report(
        "Class day: memory of the appliance (MB of USS: Voilà with its kernels, the service, PostgreSQL)",
        ["class", "at rest", "pool planned and full", "peak", "after they close", "closing took s", "pool fill s"],
        [
            [label, rest, r["planned"], r["peak"], r["after"], r["back"], r["filled"]]
            for label, r in (("no browsers", wire), ("in Chromium", browser))
        ],
        "classroom_memory",
    )
    return rows


def main(settings: Settings) -> None:
    console.print("[bold]Class day[/]")
    started = []
    if _listening(settings.voila_port) is None:
        console.print("  Voilà is not running: starting it")
        jupyter.ensure_local_user(settings)
        child = jupyter.voila_child(settings)
        child.start(settings, timeout=120)
        started.append(child)
    try:
        bench_voila(settings)
    finally:
        for child in started:
            child.stop()


if __name__ == "__main__":
    from starbox import settings as settings_mod

    main(settings_mod.get())
