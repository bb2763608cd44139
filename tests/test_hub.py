"""Shared mode (issue 13): the real JupyterHub with its real proxy (configurable-http-proxy from
npm) over HTTPS with the box's own CA, Starbox logins, labs as real Unix users."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import pwd
import re
import secrets
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import free_port, make_settings, settings_env, until
from starbox import account_removal, accounts, classes, database, storage_home
from starbox.jupyter import ensure_local_user, voila_child
from starbox.jupyter.hub import admin, config, kernels, tls, unix
from starbox.jupyter.hub.paths import config_file, datalab_env, hub_dir, local_url, proxy_command
from starbox.jupyter.workspace import ensure_lessons
from starbox.service.routers import MOUNTS
from traitlets.config import Config

ROOT = os.geteuid() == 0


# --- unit: names, certificates, configuration -------------------------------------------------


@pytest.mark.unit
def test_unix_names_have_the_prefix_and_fit_linux(tmp_path):
    from starbox import settings as settings_mod

    s = settings_mod.load({"STARBOX_HOME": str(tmp_path), "STARBOX_HUB_USER_PREFIX": "sb-"})
    assert unix.system_name(s, "root") == "sb-root"  # never an existing system user
    long_a, long_b = "a" * 29 + "x", "a" * 29 + "y"
    na, nb = unix.system_name(s, long_a), unix.system_name(s, long_b)
    assert len(na) <= 32 and len(nb) <= 32 and na != nb and na.startswith("sb-aaaa")


@pytest.mark.system
@pytest.mark.parametrize("module", ["starbox.jupyter.hub.expiry", "starbox.jupyter.hub.culler"])
def test_the_hubs_services_stop_at_once_even_when_started_with_sigint_ignored(module, tmp_path):
    # JupyterHub stops a service with SIGINT and waits 10 s before SIGTERM; a hub started from a
    # shell without job control hands its services SIGINT ignored (signals.py).
    import signal

    env = settings_env(make_settings(tmp_path)) | {
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{free_port()}/hub/api",  # nobody there
        "JUPYTERHUB_API_TOKEN": "not-a-token",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", module],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        time.sleep(3)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # it runs on, hub or not
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(8)  # within JupyterHub's interrupt_timeout
        assert time.monotonic() - started < 8
        assert b"KeyboardInterrupt" not in proc.stderr.read()  # a clean exit, no traceback
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.unit
def test_the_box_certificate_is_signed_by_its_ca_and_names_the_box(tmp_path):
    from starbox import settings as settings_mod

    s = settings_mod.load({"STARBOX_HOME": str(tmp_path)})
    cert = tls.ensure(s)
    assert oct(cert.key.stat().st_mode & 0o777) == "0o600"
    ctx = ssl.create_default_context(cafile=str(cert.ca))
    # the chain verifies and names 127.0.0.1: a TLS handshake against a local server
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(str(cert.cert), str(cert.key))
    import socket
    import threading

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def serve():
            conn, _ = listener.accept()
            try:
                with server_ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.recv(1)
            except (ssl.SSLError, OSError):
                pass

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        with socket.create_connection(("127.0.0.1", port)) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as client:
                assert client.version()
                client.send(b"x")
        t.join(5)
    again = tls.ensure(s)  # kept while the names hold
    assert again.cert.read_bytes() == cert.cert.read_bytes()
    assert tls.ca_pem(s).startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.unit
def test_a_missing_site_certificate_is_a_clear_refusal(tmp_path):
    from starbox import settings as settings_mod
    from starbox.errors import StarboxError

    s = settings_mod.load(
        {"STARBOX_HOME": str(tmp_path), "STARBOX_HUB_CERT": "/nope.pem", "STARBOX_HUB_KEY": "/nope.key"}
    )
    with pytest.raises(StarboxError, match="hub_cert setting names /nope.pem"):
        tls.ensure(s)


@pytest.mark.unit
def test_the_public_port_carries_the_service_and_the_apps(tmp_path):
    from starbox import settings as settings_mod

    s = settings_mod.load({"STARBOX_HOME": str(tmp_path)})
    routes = config.extra_routes(s)
    for _, prefix in MOUNTS:
        assert routes[prefix + "/"] == f"http://127.0.0.1:{s.service_port}"
    assert routes["/apps/"] == f"http://127.0.0.1:{s.voila_port}"
    # with the service's proxy socket there, the proxy sends the service's paths to it
    from starbox.service.deps import proxy_socket

    sock = proxy_socket(s)
    sock.parent.mkdir(parents=True)
    import socket as socket_mod

    with socket_mod.socket(socket_mod.AF_UNIX) as listener:
        listener.bind(str(sock))
        listener.listen(8)
        assert config.service_target(s) == "http+unix://" + str(sock).replace("/", "%2F")
        assert "/auth/" not in config.extra_routes(s)  # JupyterHub takes http only: routes.py keeps these
    # a socket file nobody listens on (a stopped service): the loopback port
    assert config.extra_routes(s)["/auth/"] == f"http://127.0.0.1:{s.service_port}"
    sock.unlink()
    c = Config()
    config.apply(c, s)
    assert c.JupyterHub.bind_url == f"https://0.0.0.0:{s.hub_port}/"
    assert c.JupyterHub.hub_bind_url.startswith("http://127.0.0.1:")
    assert c.ConfigurableHTTPProxy.api_url.startswith("http://127.0.0.1:")
    assert c.JupyterHub.cleanup_servers is False
    assert c.Spawner.disable_user_config is True
    names = {r["name"]: set(r["scopes"]) for r in c.JupyterHub.load_roles}
    assert "admin:servers" not in names["starbox-expiry"] and "delete:servers" in names["starbox-expiry"]


@pytest.mark.unit
def test_kernels_are_registered_only_when_the_labs_users_can_run_them(tmp_path):
    from starbox import settings as settings_mod
    from starbox.errors import StarboxError
    from starbox.jupyter.hub import kernels

    s = settings_mod.load({"STARBOX_HOME": str(tmp_path), "STARBOX_HUB_SHARE": str(tmp_path / "share")})
    with pytest.raises(StarboxError, match="is not a kernel name"):
        kernels.add(s, "Bad Name", Path(sys.executable))
    with pytest.raises(StarboxError, match="lab environment's own Python"):
        kernels.add(s, "python3", Path(sys.executable))
    with pytest.raises(StarboxError, match="is not a Python interpreter"):
        kernels.add(s, "nope", tmp_path / "no-python")
    if ROOT:  # this test environment's python lives under /root: a lab's user cannot start it
        with pytest.raises(StarboxError, match="cannot start a kernel for the labs' users|hub users cannot reach"):
            kernels.add(s, "mine", Path(sys.executable))
    assert kernels.names(s) == ["python3"]
    lab_python = s.hub_env / "bin" / "python"
    if lab_python.exists():
        k = kernels.add(s, "extra", lab_python, "Extra env")
        assert [x.name for x in kernels.listing(s)] == ["python3", "extra"] and k.display_name == "Extra env"
        kernels.remove(s, "extra")
    with pytest.raises(StarboxError, match="no registered kernel"):
        kernels.remove(s, "extra")


# --- system: the real hub ---------------------------------------------------------------------


def _login(base: str, ca: Path, user: str, password: str) -> tuple[httpx.Client, httpx.Response]:
    c = httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=60)
    c.get(f"{base}/hub/login")
    r = c.post(f"{base}/hub/login", data={"username": user, "password": password, "_xsrf": c.cookies.get("_xsrf")})
    return c, r


def _login_error(r: httpx.Response) -> str:
    """The message the login page shows (JupyterHub's login_error box)."""
    m = re.search(r'class="login_error">\s*(.*?)\s*</', r.text, re.S)
    return html.unescape(m.group(1).strip()) if m else f"no message: {r.status_code}"


class HubRun:
    """The real hub (and its proxy) as `starbox up --shared` runs it, on free ports, with its own
    share and Unix user prefix; `restart` stops it and starts it again, with changed settings."""

    def __init__(self, s0, tag: str):
        self.tag = tag
        self.extra = {
            "STARBOX_HUB_PORT": str(free_port()),
            "STARBOX_HUB_HTTP_PORT": "0",
            "STARBOX_HUB_API_PORT": str(free_port()),
            "STARBOX_HUB_PROXY_API_PORT": str(free_port()),
            "STARBOX_HUB_SHARE": f"/opt/starbox/test-share-{tag}",
            "STARBOX_HUB_USER_PREFIX": f"sbt{tag}-",
        }
        self.base_env = settings_env(s0)
        self.proc: subprocess.Popen | None = None

    @property
    def settings(self):
        from starbox import settings as settings_mod

        return settings_mod.load(self.base_env | self.extra)

    def start(self, **changes: str) -> None:
        self.extra.update(changes)
        s = self.settings
        hub_dir(s).mkdir(parents=True, exist_ok=True, mode=0o700)
        log = (s.log_dir / f"jupyterhub-test-{self.tag}.log").open("ab")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("jupyterhub")), "-f", str(config_file(s))],
            env=self.base_env | self.extra,
            cwd=hub_dir(s),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert until(lambda: _answers(f"http://127.0.0.1:{s.hub_api_port}/hub/api/"), timeout=90), (
            "the hub did not start"
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the hub stops its proxy; labs keep running (cleanup_servers=False)
            self.proc.wait(60)

    def restart(self, **changes: str) -> None:
        self.stop()
        self.start(**changes)


@pytest.fixture(scope="module")
def hub_run(service):
    if not ROOT:
        pytest.skip("the hub makes Unix users: it runs as root (CI does)")
    s0 = service.settings
    if not proxy_command(s0).exists() or not (s0.hub_env / "bin" / "jupyterhub-singleuser").exists():
        pytest.fail("shared mode is not installed: appliance/install.sh --hub")
    dl_python = datalab_env(s0) / "bin" / "python"
    if not dl_python.exists():
        pytest.fail("the Data Lab client kernel is not installed: appliance/install.sh --hub")
    run = HubRun(s0, secrets.token_hex(2))
    s = run.settings
    voila = voila_child(dataclasses.replace(s, shared=True), preheat=False, name=f"voila-hub-{run.tag}")
    ensure_local_user(s)
    ensure_lessons(s)  # as `starbox up --shared` does on a first start
    kernels.add(s, "datalab", dl_python, "Data Lab client")  # as install.sh --hub does
    names = [f"hubst{run.tag}a", f"hubst{run.tag}b", f"hubst{run.tag}c"]
    with database.connect_admin(s) as conn:
        for n in names:
            accounts.add(conn, s, n, "hub-pass-1")
    run.names = names
    try:
        run.start()
        voila.start(s)
        yield run
    finally:
        if run.proc:
            os.killpg(run.proc.pid, 15)
            run.proc.wait(30)
        voila.stop()
        with database.connect_admin(s) as conn:
            made = [n for n in names if accounts.uid_of(conn, n) is not None]
            made += [m for c in classes.list_classes(conn) if c.name.startswith(f"hubc{run.tag}")
                     for m in classes.members(conn, c.name)]
            account_removal.remove(conn, s, made)  # their Unix users and homes too
        for n in names:
            unix.remove_user(s, n)
        subprocess.run(["rm", "-rf", str(s.hub_share)])


@pytest.fixture(scope="module")
def hub(hub_run):
    return hub_run.settings, hub_run.names


def _hub_xsrf(c: httpx.Client) -> str:
    return next(k.value for k in c.cookies.jar if k.name == "_xsrf" and k.path.startswith("/hub"))


def _start_lab(c: httpx.Client, base: str, name: str, **options: str) -> None:
    """Spawn the logged-in user's lab (through the spawn form, when they get one) and go through
    the lab's OAuth login, as a browser would."""
    page = c.get(f"{base}/hub/spawn", follow_redirects=True)
    if 'id="spawn_form"' in page.text:
        form = {"_xsrf": _hub_xsrf(c), "kernel": "python3", "size": "standard", **options}
        c.post(f"{base}/hub/spawn", data=form, follow_redirects=True)

    def lab_up() -> bool:
        c.get(f"{base}/user/{name}/lab", follow_redirects=True)
        return c.get(f"{base}/user/{name}/api/status").status_code == 200

    assert until(lab_up, timeout=120), f"{name}'s lab did not come up"


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code < 500
    except httpx.HTTPError:
        return False


@pytest.mark.system
def test_a_student_logs_in_over_https_and_gets_a_lab_as_their_own_unix_user(hub):
    s, (alice, bob, _) = hub
    base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
    c, wrong = _login(base, ca, alice, "not-the-password")
    assert wrong.status_code == 403 and "Invalid password" in _login_error(wrong)

    c, r = _login(base, ca, alice, "hub-pass-1")
    assert r.status_code == 302, _login_error(r)
    # the spawn form offers the registered kernels and the sizes; anything else is a 400
    form = c.get(f"{base}/hub/spawn").text
    assert 'value="python3"' in form and 'value="standard"' in form
    for bad in ({"kernel": "no-such-kernel"}, {"size": "enormous"}):
        refused = c.post(f"{base}/hub/spawn", data={"_xsrf": _hub_xsrf(c), **bad})
        assert refused.status_code == 400, refused.status_code
        assert "is not a size you can choose" in refused.text or "No kernel is called" in refused.text
    _start_lab(c, base, alice)
    entry = pwd.getpwnam(unix.system_name(s, alice))
    owners = {
        p.uids().real
        for p in psutil.process_iter()
        if "jupyterhub-singleuser" in " ".join(p.cmdline() or []) and p.uids().real == entry.pw_uid
    }
    assert owners == {entry.pw_uid}  # the lab runs as the student, not root
    home = Path(entry.pw_dir)
    assert home.stat().st_mode & 0o777 == 0o700
    token = (home / ".datalab" / f"id_token.{alice}").read_text().strip()
    assert (home / ".datalab" / f"id_token.{alice}").stat().st_mode & 0o777 == 0o600
    with database.connect_admin(s) as conn:
        assert accounts.resolve(conn, token) == accounts.User(alice, accounts.uid_of(conn, alice))
    assert "status = loggedin" in (home / ".datalab" / "dl.conf").read_text()
    assert (home / "Welcome.ipynb").exists()

    # the Data Lab API through the same public port, with the lab's token
    valid = httpx.get(
        f"{base}/auth/isValidToken",
        headers={"X-DL-AuthToken": token},
        verify=ssl.create_default_context(cafile=str(ca)),
    )
    assert valid.status_code == 200 and valid.text.strip() == "True"

    # their Starbox storage is the folder storage/ in the lab: saved there, it is in vos://
    lab_api = f"{base}/user/{alice}/api/contents"
    xsrf = next(k.value for k in c.cookies.jar if k.name == "_xsrf" and k.path.startswith(f"/user/{alice}"))
    saved = c.put(f"{lab_api}/storage/from-the-lab.txt", headers={"X-XSRFToken": xsrf},
                  json={"type": "file", "format": "text", "content": "saved in the hub's lab\n"})
    assert saved.status_code == 201, saved.text
    assert (storage_home.root(s, alice) / "from-the-lab.txt").read_text() == "saved in the hub's lab\n"

    # another student cannot look into this home
    unix.ensure_user(s, bob)
    peek = subprocess.run(
        ["runuser", "-u", unix.system_name(s, bob), "--", "ls", str(home)], capture_output=True, text=True
    )
    assert peek.returncode != 0 and "Permission denied" in peek.stderr

    # an account that ends: its login is refused, its lab stops within 60 s, its token dies
    with database.connect_admin(s) as conn:
        accounts.set_disabled(conn, alice)
    assert until(lambda: c.get(f"{base}/user/{alice}/api/status").status_code != 200, timeout=60)
    assert until(lambda: not any(p.uids().real == entry.pw_uid for p in psutil.process_iter()), timeout=30)
    _, again = _login(base, ca, alice, "hub-pass-1")
    assert again.status_code == 403 and "Account is disabled" in _login_error(again)
    with database.connect_admin(s) as conn:
        assert accounts.resolve(conn, token) is None


@pytest.mark.system
def test_the_apps_need_no_login_on_the_public_port(hub):
    s, _ = hub
    base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
    verify = ssl.create_default_context(cafile=str(ca))
    apps = sorted(p.name for p in (s.project_root / "voila_apps").glob("*.ipynb"))
    page = httpx.get(f"{base}/apps/voila/render/{apps[0]}", verify=verify, timeout=120)
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert httpx.get(f"{base}/apps/starbox/pools", verify=verify).json()["preheat"] is False


# --- a student's browser: Debian's Chromium, trusting the box's CA as a student would ------------

CHROMIUM = Path("/usr/bin/chromium")

# Run in the student's kernel: everything they must not reach, and what happened.
PROBE = """
import os, psycopg
from starbox import settings
s = settings.get()
def probe(label, attempt):
    try:
        attempt()
        print(label, "READ")
    except (OSError, psycopg.Error):
        print(label, "refused")
probe("other-home", lambda: os.listdir({other_home!r}))
probe("hub-environ", lambda: open("/proc/{hub_pid}/environ").read())
probe("other-lab-environ", lambda: open("/proc/{other_pid}/environ").read())
probe("secrets", lambda: os.listdir({secrets!r}))
probe("superuser-tcp", lambda: psycopg.connect(host="127.0.0.1", port={pg_port}, user="postgres",
                                               dbname={db!r}, connect_timeout=5).close())
probe("superuser-socket", lambda: psycopg.connect(host={run_dir!r}, port={pg_port}, user="postgres",
                                                  dbname={db!r}, connect_timeout=5).close())
print("probe done")
"""


DL_NOTEBOOK = {
    "cells": [{
        "cell_type": "code", "execution_count": None, "id": "dl1", "metadata": {}, "outputs": [],
        "source": "from dl import authClient as ac, queryClient as qc\n"
                  "print('dl is', ac.whoAmI())\n"
                  "print(qc.query(sql=\"SELECT name, messier FROM openngc.objects WHERE messier = '031'\"))",
    }],
    "metadata": {"kernelspec": {"name": "datalab", "display_name": "Data Lab client", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def _ids(s, account: str) -> tuple[int, int]:
    entry = pwd.getpwnam(unix.system_name(s, account))
    return entry.pw_uid, entry.pw_gid


def _trusting_profile(home: Path, ca: Path) -> dict[str, str]:
    """A HOME whose NSS database trusts the CA: what `starbox hub ca` tells students to import."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    subprocess.run(["certutil", "-N", "--empty-password", "-d", f"sql:{nssdb}"], check=True)
    subprocess.run(["certutil", "-A", "-d", f"sql:{nssdb}", "-n", "starbox", "-t", "C,,", "-i", str(ca)], check=True)
    return {"HOME": str(home), "PATH": os.environ["PATH"]}


def _run_in_new_cell(page, code: str) -> None:
    """Add a cell below the current one, type the code, run it (Shift+Enter)."""
    page.keyboard.press("Escape")
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    page.keyboard.insert_text(code)
    page.keyboard.press("Shift+Enter")


@pytest.mark.system
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_a_student_in_chromium_logs_in_runs_a_cone_search_and_reaches_nobody_else(hub, tmp_path, output_dir):
    from playwright.sync_api import sync_playwright

    s, (_, bob, carol) = hub
    base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
    # bob has a running lab: carol's kernel must reach neither his home nor his processes
    other, _ = _login(base, ca, bob, "hub-pass-1")
    _start_lab(other, base, bob)
    bob_user = pwd.getpwnam(unix.system_name(s, bob))
    bob_pid = next(p.pid for p in psutil.process_iter() if p.uids().real == bob_user.pw_uid)
    hub_pid = int((hub_dir(s) / "jupyterhub.pid").read_text())
    shots = output_dir / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"],
            env=_trusting_profile(tmp_path / "student", ca),
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1400})  # no ignore_https_errors
            page.set_default_timeout(120_000)
            page.goto(f"{base}/hub/login")
            page.fill("#username_input", carol)
            page.fill("#password_input", "hub-pass-1")
            page.click("#login_submit")
            page.wait_for_selector("#spawn_form")  # a researcher's account chooses; the defaults are fine
            page.click("#spawn_form [type=submit]")
            page.wait_for_url(re.compile(rf"/user/{carol}/lab/tree/Welcome.ipynb"))
            page.wait_for_selector(".jp-RenderedMarkdown h1:has-text('Welcome to Starbox')")
            page.screenshot(path=shots / "hub-welcome.png")

            # the check cell: who am I, and a cone search around M31
            cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first
            cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            cell.locator(".jp-OutputArea-output", has_text=f"You are logged in as {carol}").wait_for()
            cell.locator(".jp-OutputArea-output", has_text="Andromeda").wait_for()
            rows = cell.locator(".jp-OutputArea-output table tbody tr")
            assert rows.count() >= 2  # M31 and its companions within a degree

            values = {
                "other_home": bob_user.pw_dir,
                "hub_pid": hub_pid,
                "other_pid": bob_pid,
                "secrets": str(s.secrets_dir),
                "pg_port": s.pg_port,
                "db": s.db_name,
                "run_dir": str(s.run_dir),
            }
            cell.locator(".jp-InputArea-editor").click()
            _run_in_new_cell(page, PROBE.format(**values))
            done = page.locator(".jp-OutputArea-output", has_text="probe done")
            done.wait_for()
            report = done.inner_text()
            page.screenshot(path=shots / "hub-probe.png")
            for label in ("other-home", "hub-environ", "other-lab-environ", "secrets", "superuser-tcp", "superuser-socket"):
                assert f"{label} refused" in report, report

            # a lesson from the welcome page opens in the student's own copy
            link = page.locator(".jp-RenderedMarkdown a[href*='lessons/']").first
            name = Path(link.get_attribute("href").split("?")[0]).name
            link.click()
            page.locator(f".lm-TabBar-tab.lm-mod-current:has-text('{name}')").wait_for()
            page.wait_for_function(
                "() => document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').length > 1"
            )
            page.screenshot(path=shots / "hub-lesson.png")

            # a notebook on the "Data Lab client" kernel: the real dl, logged in, pointed at this box
            home = Path(pwd.getpwnam(unix.system_name(s, carol)).pw_dir)
            check = home / "dl-check.ipynb"
            check.write_text(json.dumps(DL_NOTEBOOK))
            os.chown(check, *_ids(s, carol))
            page.goto(f"{base}/user/{carol}/lab/tree/dl-check.ipynb")
            page.locator("text=Data Lab client").first.wait_for()  # the notebook's kernel, in its toolbar
            dl_cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell").first
            dl_cell.locator(".jp-InputArea-editor").click()
            page.keyboard.press("Shift+Enter")
            dl_cell.locator(".jp-OutputArea-output", has_text="NGC0224").wait_for()
            assert f"dl is {carol}" in dl_cell.locator(".jp-OutputArea-output").first.inner_text()
            page.screenshot(path=shots / "hub-datalab-kernel.png")
        finally:
            browser.close()


SHARED_NOTEBOOK = {
    "cells": [{"cell_type": "code", "execution_count": None, "id": "c1", "metadata": {}, "outputs": [],
               "source": "# bob's cell"}],
    "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}},
    "nbformat": 4, "nbformat_minor": 5,
}


def _browser_login(context, base: str, account: str) -> None:
    page = context.new_page()
    page.goto(f"{base}/hub/login")
    page.fill("#username_input", account)
    page.fill("#password_input", "hub-pass-1")
    page.click("#login_submit")
    page.wait_for_load_state()
    page.close()


@pytest.mark.system
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed")
def test_a_shared_notebook_is_edited_live_by_two_users_until_the_share_is_revoked(hub, tmp_path):
    """bob shares his lab with carol (JupyterHub's sharing); both open the same notebook, carol
    types, bob's page shows it (jupyter-collaboration); bob revokes the share and carol is out."""
    from playwright.sync_api import sync_playwright

    s, (_, bob, carol) = hub
    base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
    owner, _ = _login(base, ca, bob, "hub-pass-1")
    _start_lab(owner, base, bob)
    home = Path(pwd.getpwnam(unix.system_name(s, bob)).pw_dir)
    (home / "together.ipynb").write_text(json.dumps(SHARED_NOTEBOOK))
    os.chown(home / "together.ipynb", *_ids(s, bob))
    _login(base, ca, carol, "hub-pass-1")  # the hub knows an account from its first login on
    shares = f"{base}/hub/api/shares/{bob}/"
    shared = owner.post(shares, json={"user": carol}, headers={"X-XSRFToken": _hub_xsrf(owner)})
    assert shared.status_code == 200, shared.text

    notebook = f"{base}/user/{bob}/lab/tree/together.ipynb"
    editor = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputArea-editor"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"],
                                     env=_trusting_profile(tmp_path / "browsers", ca))
        try:
            pages = {}
            for account in (bob, carol):
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                context.set_default_timeout(120_000)
                _browser_login(context, base, account)
                page = context.new_page()
                page.goto(notebook)
                if page.locator("text=Authorize access").count() or page.locator("#authorize-form").count():
                    page.click("input[type=submit], button[type=submit]")  # carol lets bob's lab know her
                page.wait_for_selector(editor)
                pages[account] = page
            pages[carol].locator(editor).first.click()
            pages[carol].keyboard.press("End")
            pages[carol].keyboard.insert_text("\nprint('typed by carol')")
            pages[bob].locator(editor, has_text="typed by carol").first.wait_for()

            # bob revokes the share: carol's open session loses his lab within the auth cache's 20 s
            def carol_reaches_bob() -> bool:  # from carol's page, with her session (a redirect: sent to log in)
                status = pages[carol].evaluate(
                    """async (u) => {
                        const xsrf = document.cookie.split('; ').find(c => c.startsWith('_xsrf=')).slice(6);
                        return (await fetch(u, {redirect: 'manual', headers: {'X-XSRFToken': xsrf}})).status;
                    }""", f"/user/{bob}/api/contents")
                return status == 200

            assert carol_reaches_bob()
            revoked = owner.delete(shares, headers={"X-XSRFToken": _hub_xsrf(owner)})
            assert revoked.status_code in (200, 204), revoked.text
            assert until(lambda: not carol_reaches_bob(), timeout=60), "carol still reaches bob's lab after the revoke"
        finally:
            browser.close()


# --- restarts, prewarming, culling, a class's end: these change the hub's settings, so they come last


def _lab_pids(s, account: str) -> set[int]:
    uid = pwd.getpwnam(unix.system_name(s, account)).pw_uid
    return {p.pid for p in psutil.process_iter(["uids", "cmdline", "status"])
            if p.info["uids"] and p.info["uids"].real == uid and p.info["status"] != psutil.STATUS_ZOMBIE
            and "jupyterhub-singleuser" in " ".join(p.info["cmdline"] or [])}


@pytest.mark.system
def test_a_hub_restart_keeps_the_labs_running_and_reachable(hub_run):
    s = hub_run.settings
    bob = hub_run.names[1]
    base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
    c, _ = _login(base, ca, bob, "hub-pass-1")
    _start_lab(c, base, bob)
    before = _lab_pids(s, bob)
    hub_run.restart()
    assert until(lambda: c.get(f"{base}/user/{bob}/api/status").status_code == 200, timeout=90)
    assert before and _lab_pids(s, bob) == before  # the same lab, never restarted


def _run_quietly_for_minutes(c: httpx.Client, base: str, ca: Path, account: str) -> None:
    """Start a kernel in the lab and have it work for 15 minutes without a word (sleep)."""
    import uuid

    import websocket

    lab = f"{base}/user/{account}"
    xsrf = next(k.value for k in c.cookies.jar if k.name == "_xsrf" and k.path.startswith(f"/user/{account}"))
    kernel = c.post(f"{lab}/api/kernels", json={"name": "python3"}, headers={"X-XSRFToken": xsrf})
    assert kernel.status_code == 201, kernel.text
    cookies = "; ".join(f"{k.name}={k.value}" for k in c.cookies.jar)
    ws = websocket.create_connection(
        f"{lab.replace('https://', 'wss://')}/api/kernels/{kernel.json()['id']}/channels",
        sslopt={"ca_certs": str(ca)}, header=[f"Cookie: {cookies}", f"X-XSRFToken: {xsrf}"], timeout=60,
    )
    header = {"msg_id": uuid.uuid4().hex, "session": uuid.uuid4().hex, "username": account,
              "msg_type": "execute_request", "version": "5.3", "date": ""}
    ws.send(json.dumps({"header": header, "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                        "content": {"code": "import time; time.sleep(900)", "silent": False, "store_history": False,
                                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
    while True:  # until the kernel says it is busy with that request
        msg = json.loads(ws.recv())
        if msg.get("msg_type") == "status" and msg["content"]["execution_state"] == "busy" \
                and msg["parent_header"].get("msg_id") == header["msg_id"]:
            break
    ws.close()


@pytest.mark.system
def test_a_class_is_prewarmed_its_idle_labs_culled_its_busy_ones_kept_and_its_purge_removes_its_users(hub_run):
    hub_run.restart(STARBOX_HUB_CLASS_IDLE_S="40")
    s = hub_run.settings
    base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
    klass = f"hubc{hub_run.tag}"
    with database.connect_admin(s) as conn:
        _, issued = classes.create(conn, s, klass, 2, 1)
    (busy, busy_password), (idle, _) = issued

    started = time.monotonic()
    assert admin.prewarm(s, klass, log=lambda line: None) == {busy: "ready", idle: "ready"}
    assert _lab_pids(s, busy) and _lab_pids(s, idle)
    welcome = (Path(pwd.getpwnam(unix.system_name(s, idle)).pw_dir) / "Welcome.ipynb").read_text()
    assert f"This account belongs to the class **{klass}** and ends on" in welcome  # the class's end date
    with admin.client(s) as api:
        assert api.get(f"/users/{idle}").json()["groups"] == [klass]

    c, r = _login(base, ca, busy, busy_password)
    assert r.status_code == 302, _login_error(r)
    _start_lab(c, base, busy)  # running already: the class account goes straight to it
    _run_quietly_for_minutes(c, base, ca, busy)

    assert until(lambda: not _lab_pids(s, idle), timeout=150), "the idle class lab was not culled"
    time.sleep(max(0.0, started + 90 - time.monotonic()))  # well past the 40 s idle time
    assert _lab_pids(s, busy), "a lab whose kernel is working was culled"
    assert c.get(f"{base}/user/{busy}/api/status").status_code == 200

    # the class ends and is purged: its Unix users, homes and labs go with the accounts
    homes = [Path(pwd.getpwnam(unix.system_name(s, n)).pw_dir) for n in (busy, idle)]
    with database.connect_admin(s) as conn:
        classes.remove(conn, s, klass)
    assert unix.lookup(s, busy) is None and unix.lookup(s, idle) is None
    assert not any(h.exists() for h in homes)
    assert until(lambda: c.get(f"{base}/user/{busy}/api/status").status_code != 200, timeout=30)


@pytest.mark.system
def test_starbox_up_shared_is_one_command_and_down_stops_the_labs(tmp_path):
    """The admin's way, on a home of its own: `starbox up --shared`, a login and a lab, `status`,
    then the signal `starbox down` sends: the labs stop with the hub."""
    import signal

    if not ROOT:
        pytest.skip("the hub makes Unix users: it runs as root (CI does)")
    tag = secrets.token_hex(2)
    hub_env = {
        "STARBOX_HUB_PORT": str(free_port()),
        "STARBOX_HUB_HTTP_PORT": str(free_port()),
        "STARBOX_HUB_API_PORT": str(free_port()),
        "STARBOX_HUB_PROXY_API_PORT": str(free_port()),
        "STARBOX_HUB_SHARE": f"/opt/starbox/test-share-{tag}",
        "STARBOX_HUB_USER_PREFIX": f"sbu{tag}-",
    }
    s = make_settings(tmp_path / "home", sample_catalogs="openngc", **{k[8:].lower(): v for k, v in hub_env.items()})
    env = settings_env(s) | hub_env
    exe = Path(sys.executable).with_name("starbox")
    proc = subprocess.Popen([str(exe), "up", "--shared"], env=env, stdout=subprocess.PIPE, text=True)
    name = f"upst{tag}"
    try:
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        said = "".join(lines)
        assert f":{s.hub_port}/" in said and "starbox hub ca" in said, said
        status = subprocess.run([str(exe), "status"], env=env, capture_output=True, text=True, timeout=120).stdout
        assert re.search(r"JupyterHub\s+│\s+running", status) and "MEM_LIMIT" in status, status
        added = subprocess.run([str(exe), "accounts", "add", name, "--password", "up-pass-1"], env=env,
                               capture_output=True, text=True, timeout=120)
        assert added.returncode == 0, added.stderr
        # plain HTTP is sent to HTTPS
        redirect = httpx.get(f"http://127.0.0.1:{s.hub_http_port}/hub/login", timeout=30)
        assert redirect.status_code in (301, 302) and redirect.headers["location"].startswith("https://")
        base, ca = local_url(s), hub_dir(s) / "tls" / "ca.pem"
        c, r = _login(base, ca, name, "up-pass-1")
        assert r.status_code == 302, _login_error(r)
        _start_lab(c, base, name)
        assert _lab_pids(s, name)
        # the Data Lab API through the public port reaches the service on its proxy socket
        assert config.service_target(s).startswith("http+unix://")
        alive = httpx.get(f"{base}/auth/", verify=ssl.create_default_context(cafile=str(ca)), timeout=30)
        assert alive.status_code == 200 and alive.text.lower().startswith("hello")
        proc.send_signal(signal.SIGTERM)  # what `starbox down` sends
        assert proc.wait(timeout=120) == 0
        assert not _lab_pids(s, name), "a lab outlived `starbox down`"
        assert not _answers(f"http://127.0.0.1:{s.hub_api_port}/hub/api/")
    finally:
        if proc.poll() is None:
            proc.kill()
        from starbox.cluster import Cluster

        Cluster(s).stop()
        unix.remove_user(s, name)
        subprocess.run(["rm", "-rf", hub_env["STARBOX_HUB_SHARE"]])
