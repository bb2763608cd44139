"""JupyterLab and the Voilà apps in a real browser: Debian's headless Chromium driven by Playwright.

JupyterLab and Voilà are started with `starbox.jupyter.children(...)` on free ports against the
session's appliance and live service, exactly as `starbox up` starts them. Every check reads the
page back (an image's `src`, a label's text, a message box); nothing is assumed. A screenshot of
each app, and of JupyterLab, is saved under test-output/screenshots/.
"""

from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

import httpx
import nbformat
import psutil
import pytest

from conftest import free_port
from starbox import jupyter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60_000  # ms, for anything that involves a kernel

pytestmark = [pytest.mark.system,
              pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")]


@pytest.fixture(scope="module")
def appliance(service):
    """JupyterLab and Voilà of the session's appliance, on free ports, pools warm."""
    settings = dataclasses.replace(service.settings, jupyter_port=free_port(), voila_port=free_port())
    started = []
    try:
        for child in jupyter.children(settings):
            child.start(settings, timeout=120)
            started.append(child)
        jupyter.wait_warm(settings, timeout=180)
        yield settings
    finally:
        for child in reversed(started):
            child.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context; every request that leaves 127.0.0.1 is recorded in page.outside."""
    context = browser.new_context(viewport={"width": 1280, "height": 1500})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT)
    outside: list[str] = []
    tab.on("request", lambda r: outside.append(r.url)
           if re.match(r"^(https?|wss?)://", r.url) and not re.match(r"^(https?|wss?)://127\.0\.0\.1[:/]", r.url)
           else None)
    tab.outside = outside
    yield tab
    context.close()


@pytest.fixture(scope="module")
def shots(output_dir) -> Path:
    path = output_dir / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- JupyterLab -------------------------------------------------------------------------------

def lessons_published() -> bool:
    return any((ROOT / "lessons").rglob("*.ipynb"))


def test_lab_opens_on_the_welcome_page_and_opens_a_lesson(appliance, page, shots):
    page.goto(f"http://127.0.0.1:{appliance.jupyter_port}/")
    page.wait_for_selector(".jp-RenderedMarkdown h1:has-text('Welcome to Starbox')")
    assert "/lab/tree/Welcome.ipynb" in page.url
    page.wait_for_selector(".jp-mod-readWrite, .jp-NotebookPanel")  # the notebook widget is up
    page.screenshot(path=shots / "jupyterlab-welcome.png")
    links = page.locator(".jp-RenderedMarkdown a[href*='/files/lessons/']")
    if not lessons_published():
        pytest.skip("lessons/ has no notebooks yet")
    assert links.count() > 0, "the welcome page links no lesson"
    lesson = links.first
    name = Path(lesson.get_attribute("href").split("?")[0]).name
    lesson.click()
    tab = page.locator(f".lm-TabBar-tab.lm-mod-current:has-text('{name}')")
    tab.wait_for()
    page.wait_for_url(re.compile(re.escape(name) + "$"))
    # The lesson's cells are on screen (JupyterLab renders a long notebook lazily: a few suffice).
    page.wait_for_function("() => document.querySelectorAll("
                           "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length > 1")
    page.screenshot(path=shots / "jupyterlab-lesson.png")
    assert page.outside == []


def test_lab_kernels_are_logged_in_as_the_local_user(appliance, page):
    page.goto(f"http://127.0.0.1:{appliance.jupyter_port}/lab/tree/Welcome.ipynb")
    page.wait_for_selector(".jp-RenderedMarkdown h1:has-text('Welcome to Starbox')")
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")
    out = cell.locator(".jp-OutputArea-output")
    out.filter(has_text="You are logged in as").first.wait_for()
    assert f"You are logged in as {appliance.local_user}" in out.first.inner_text()
    # ...and the query in the same cell came back with M31 from the catalog.
    cell.locator(".jp-OutputArea-output:has-text('Andromeda')").wait_for()


def test_lab_shows_the_published_lessons_read_only(appliance):
    base = f"http://127.0.0.1:{appliance.jupyter_port}"
    with httpx.Client(base_url=base, timeout=30) as http:
        http.get("/lab")
        http.headers["X-XSRFToken"] = http.cookies["_xsrf"]
        listing = http.get("/api/contents").json()
        kinds = {item["name"]: item["writable"] for item in listing["content"]}
        assert kinds["notebooks-latest"] is False and kinds["Welcome.ipynb"] is False
        assert kinds["lessons"] is True
        refused = http.put("/api/contents/notebooks-latest/new.ipynb",
                           json={"type": "notebook", "format": "json",
                                 "content": {"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}})
        assert refused.status_code == 403 and "read-only" in refused.json()["message"]
        assert http.delete("/api/contents/notebooks-latest").status_code == 403
        mine = http.put("/api/contents/lessons/scratch.txt", json={"type": "file", "format": "text", "content": "x"})
        assert mine.status_code == 201
        assert http.delete("/api/contents/lessons/scratch.txt").status_code == 204


# --- Voilà ------------------------------------------------------------------------------------

def open_app(page, settings, notebook: str):
    page.goto(jupyter.app_url(settings, notebook))
    page.wait_for_selector("img.widget-image")
    page.wait_for_selector(".starbox-message")
    assert page.locator(".starbox-message.error").count() == 0, page.locator(".starbox-message").inner_text()
    text = page.locator("body").inner_text()
    assert "Traceback" not in text
    for code in ("import ", "def ", "qc.query", "ask("):  # Voilà shows no code
        assert code not in text
    assert page.locator(".jp-CodeCell .jp-InputArea-editor").count() == 0


def image_src(page) -> str:
    return page.locator("img.widget-image").first.get_attribute("src")


def wait_new_image(page, old: str) -> str:
    page.wait_for_function("old => document.querySelector('img.widget-image').getAttribute('src') !== old", arg=old)
    return image_src(page)


def wait_text_change(locator, old: str) -> str:
    locator.page.wait_for_function("([el, old]) => el.innerText !== old", arg=[locator.element_handle(), old])
    return locator.inner_text()


def slider(page, label: str):
    return page.locator(".widget-slider").filter(has=page.locator(".widget-label", has_text=label))


def type_into_slider(page, label: str, value: str) -> None:
    readout = slider(page, label).locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def drag_slider(page, label: str, dx: float) -> None:
    box = slider(page, label).locator(".noUi-handle").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=6)
    page.mouse.up()


def message(page) -> str:
    return page.locator(".starbox-message").inner_text()


def check_sky_explorer(page):
    info = page.locator(".widget-html:has-text('Within')")
    assert "Within 1.5° of M 31" in info.inner_text()
    src = image_src(page)
    type_into_slider(page, "Radius", "3")
    info.filter(has_text="Within 3.0°").wait_for()
    src = wait_new_image(page, src)
    page.get_by_placeholder("e.g. NGC 253").fill("NGC 253")
    page.get_by_role("button", name="Find it").click()
    info.filter(has_text="NGC 253").wait_for()
    wait_new_image(page, src)
    page.get_by_placeholder("e.g. NGC 253").fill("no such thing")
    page.get_by_role("button", name="Find it").click()
    page.locator(".starbox-message.warn:has-text('could not find')").wait_for()


def check_hr_diagram(page):
    counts = page.locator(".widget-html:has-text('Showing')")
    before, src = counts.inner_text(), image_src(page)
    drag_slider(page, "closer than", -150)  # fewer, nearer stars
    after = wait_text_change(counts, before)
    assert after != before
    src = wait_new_image(page, src)
    type_into_slider(page, "closer than", "40")
    counts.filter(has_text=re.compile(r"Showing [\d,]+ stars")).wait_for()
    type_into_slider(page, "Faintest", "13")
    counts.filter(has_text=re.compile(r"[1-9]\d* white dwarfs")).wait_for()
    wait_new_image(page, src)


def check_hidden_galaxy(page):
    assert "Pick a letter" in message(page)
    src = image_src(page)
    page.get_by_role("button", name="Check my answer").click()
    page.locator(".starbox-message.warn:has-text('First pick a letter')").wait_for()
    type_into_slider(page, "Smoothing", "2")
    wait_new_image(page, src)
    page.locator(".starbox-message.info:has-text('Pick a letter')").wait_for()
    found = None
    for letter in "ABCD":
        page.locator(".widget-toggle-buttons button", has_text=re.compile(f"^{letter}$")).click()
        page.get_by_role("button", name="Check my answer").click()
        # the answer to this letter (the one before may still be showing)
        page.wait_for_function(
            "(l) => { const m = document.querySelector('.starbox-message');"
            " return m && (m.textContent.includes('Not ' + l) || m.textContent.includes('Hydra II')); }",
            arg=letter,
        )
        if "Hydra II" in message(page):
            found = letter
            break
        assert "Not " + letter in message(page)
    assert found, "at 2 arcminutes Hydra II should be one of the circles"
    assert page.locator(".starbox-message.ok").count() == 1


def check_light_curve(page):
    assert "jumble" in message(page)
    src = image_src(page)
    readout = slider(page, "Period").locator(".widget-readout")
    before = readout.inner_text()
    drag_slider(page, "Period", 100)
    assert wait_text_change(readout, before) != before
    src = wait_new_image(page, src)
    type_into_slider(page, "Period", "0.645")
    page.locator(".starbox-message.ok:has-text('snapped into shape')").wait_for()
    src = wait_new_image(page, src)
    page.get_by_role("button", name="a bit longer").click()
    page.wait_for_function("() => !document.querySelector('.starbox-message.ok')")
    assert readout.inner_text() == "0.6455"
    src = wait_new_image(page, src)
    page.get_by_role("button", name="a bit shorter").click()
    page.locator(".starbox-message.ok:has-text('snapped into shape')").wait_for()
    assert readout.inner_text() == "0.6450"
    wait_new_image(page, src)


CHECKS = {"sky_explorer.ipynb": check_sky_explorer, "hr_diagram.ipynb": check_hr_diagram,
          "hidden_galaxy.ipynb": check_hidden_galaxy, "light_curve.ipynb": check_light_curve}


@pytest.mark.parametrize("notebook", sorted(CHECKS))
def test_voila_app_reacts(appliance, page, shots, notebook):
    open_app(page, appliance, notebook)
    CHECKS[notebook](page)
    assert page.locator(".starbox-message.error").count() == 0
    page.screenshot(path=shots / notebook.replace(".ipynb", ".png"), full_page=True)
    assert page.outside == [], f"the page fetched from the network: {page.outside}"


def _settled_kernels(settings, timeout: float = 60) -> int:
    """Voilà's kernel count once the pools are warm and the count has held for 2 s."""
    jupyter.wait_warm(settings)
    seen, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = jupyter.pool_status(settings)["kernels"]
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since >= 2:
            return now
        time.sleep(0.25)
    return seen


def test_voila_shuts_a_closed_pages_kernel_down(appliance, page):
    """Voilà 0.5 never set the cookie its page needs to shut its kernel down (voila#1458), so every
    visit left a kernel behind; starbox.jupyter's page handler sets it."""
    before = _settled_kernels(appliance)  # an earlier test's page may still be shutting its kernel down
    page.goto(jupyter.app_url(appliance, "light_curve.ipynb"))
    page.wait_for_selector("img.widget-image")
    assert _settled_kernels(appliance) == before + 1  # the page's, and the pool refilled
    page.close(run_before_unload=True)
    for _ in range(100):
        if jupyter.pool_status(appliance)["kernels"] == before:
            break
        time.sleep(0.2)
    assert jupyter.pool_status(appliance)["kernels"] == before


def _second_page(browser, settings, template: str = "") -> tuple[list[dict], list[str], bool]:
    """A student opens one app, closes it and opens another (on `template`, if given). Returns that
    second page's scripts, those of them the server was asked for again (not the browser's cache),
    and whether MathJax started (it puts its CHTML style sheet in the page)."""
    query = f"?template={template}" if template else ""
    context = browser.new_context()
    try:
        first = context.new_page()
        first.goto(jupyter.app_url(settings, "hr_diagram.ipynb") + query)
        first.wait_for_selector("img.widget-image")
        first.close(run_before_unload=True)
        tab = context.new_page()
        cdp = context.new_cdp_session(tab)
        cdp.send("Network.enable")
        scripts: list[dict] = []
        cdp.on("Network.responseReceived", lambda e: scripts.append(e) if e["type"] == "Script" else None)
        cached: set[str] = set()  # the memory cache's hits
        cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
        tab.goto(jupyter.app_url(settings, "light_curve.ipynb") + query)
        tab.wait_for_selector("img.widget-image")
        tab.wait_for_selector(".starbox-message")
        assert tab.locator(".starbox-message.error").count() == 0
        fetched = [e["response"]["url"] for e in scripts
                   if e["requestId"] not in cached and not e["response"].get("fromDiskCache")]
        mathjax = tab.locator("#MJX-CHTML-styles").count() > 0
        tab.close(run_before_unload=True)
        return scripts, fetched, mathjax
    finally:
        context.close()


def test_voila_app_page_is_light_and_cached(appliance, browser):
    """The app page runs Starbox's own front end (appliance/voila-page): one bundled script instead
    of Voilà's ~60, a second page gets it from the browser's cache, and no page starts MathJax."""
    scripts, fetched, mathjax = _second_page(browser, appliance)
    names = sorted(e["response"]["url"].split("?")[0].rsplit("/", 1)[-1] for e in scripts)
    assert names == ["starbox-page.js"]
    assert fetched == [], f"asked the server again for {fetched}"
    assert not mathjax
    with httpx.Client(base_url=jupyter.voila_url(appliance), timeout=30) as http:
        page = http.get(jupyter.app_url(appliance, "light_curve.ipynb")).text
        assert "voila.js" not in page and "jupyterlab_pygments" not in page
        bundle = re.search(r'src="([^"]*/starbox/voila-static/[^"]+/starbox-page\.js)"', page).group(1)
        response = http.get(bundle)
        assert "max-age=31536000" in response.headers["cache-control"]
        # A third of Voilà's front end; much more means a whole library came in by an import.
        assert len(response.content) < 1_600_000
        assert http.get(bundle.replace("/voila-static/", "/voila-static/x")).status_code == 404
        assert http.get(bundle.replace(".js", ".css")).status_code == 200


def test_voila_full_front_end_is_cached_and_loads_no_mathjax(appliance, browser):
    """The `starbox-lab` template is Voilà's own JupyterLab-based front end, for apps that use
    widget libraries the light page does not carry. Its ~60 scripts come from the browser's cache
    on a second page (before starbox.jupyter's cache headers each one was asked again)."""
    scripts, fetched, mathjax = _second_page(browser, appliance, template="starbox-lab")
    assert len(scripts) > 20
    assert fetched == [], f"asked the server again for {fetched}"
    assert not mathjax
    with httpx.Client(base_url=jupyter.voila_url(appliance), timeout=30) as http:
        page = http.get(jupyter.app_url(appliance, "light_curve.ipynb") + "?template=starbox-lab").text
        main_js = re.search(r'src="([^"]*/starbox/voila-static/[^"]+/voila\.js)"', page).group(1)
        assert "max-age=31536000" in http.get(main_js).headers["cache-control"]
        entry = re.search(r'"load": "(static/remoteEntry\.[0-9a-f]+\.js)", "name": "@voila-dashboards/widgets-manager8"',
                          page).group(1)
        headers = http.get(f"/voila/labextensions/@voila-dashboards/widgets-manager8/{entry}").headers
        assert "immutable" in headers["cache-control"]
        assert "jupyterlab_pygments" not in page  # no code shown: its highlighting styles are not loaded


OTHER_WIDGETS = """\
import ipywidgets as W
from traitlets import Unicode


class Comet(W.DOMWidget):  # its view lives in a JavaScript module that is not installed
    _view_name = Unicode("CometView").tag(sync=True)
    _view_module = Unicode("starbox-test-comets").tag(sync=True)
    _view_module_version = Unicode("1.0.0").tag(sync=True)


display(W.IntSlider(description="plain"), Comet())
"""


def test_an_app_with_other_widgets_reloads_on_the_full_front_end(appliance, page, tmp_path):
    """The light page carries ipywidgets' own widgets only; a page that meets another library's
    widget reloads itself on `starbox-lab`, whose front end loads every installed extension."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(OTHER_WIDGETS)], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, str(tmp_path / "comets.ipynb"))
    settings = dataclasses.replace(appliance, voila_port=free_port())
    child = jupyter.voila_child(settings, preheat=False, root=tmp_path, name="voila-other-widgets")
    child.start(settings, timeout=120)
    try:
        page.goto(jupyter.app_url(settings, "comets.ipynb"))
        page.wait_for_url(re.compile(r"[?&]template=starbox-lab"))
        page.wait_for_selector(".widget-slider")
        assert page.locator("script[src$='/voila.js']").count() == 1
        assert page.locator(".starbox-message.error").count() == 0
    finally:
        child.stop()


def test_voila_app_says_plainly_when_its_kernel_dies(appliance, page):
    """A kernel that crashes (out of memory, say) takes the app's state with it: the page says so
    in plain words instead of silently ignoring the sliders."""
    page.goto(jupyter.app_url(appliance, "hr_diagram.ipynb"))
    page.wait_for_selector("img.widget-image")
    kernel_id = page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")
    kernels = [p for p in psutil.process_iter(["cmdline"]) if any(kernel_id in a for a in p.info["cmdline"] or [])]
    assert len(kernels) == 1
    kernels[0].kill()
    notice = page.locator(".starbox-message.error[role=alert]")
    notice.wait_for()
    assert "stopped working" in notice.inner_text() and "Reload the page" in notice.inner_text()
    assert "Traceback" not in page.locator("body").inner_text()


def test_voila_lists_the_apps_and_explains_errors_plainly(appliance, page, shots):
    page.goto(jupyter.voila_url(appliance))
    for notebook in CHECKS:
        title = nbformat.read(ROOT / "voila_apps" / notebook, as_version=4).metadata["title"]
        link = page.locator("a.app", has_text=title)
        assert link.get_attribute("href").endswith(f"/voila/render/{notebook}")
    page.screenshot(path=shots / "voila-apps.png")
    page.goto(f"{jupyter.voila_url(appliance)}voila/render/no_such_app.ipynb")
    page.locator("h1:has-text('We could not find this page')").wait_for()
    assert "Traceback" not in page.content()
    page.screenshot(path=shots / "voila-not-found.png")
    assert page.outside == []
