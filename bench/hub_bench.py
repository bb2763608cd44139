"""Issue 13's benchmark: JupyterHub in shared mode on this machine (it runs as root: the hub makes
Unix users).

* Spawn time: from the spawn request (the hub's API, as `starbox hub prewarm` asks) to the lab
  answering through the public HTTPS port, for fresh accounts (the first spawn makes the Unix user
  and seeds the home with the lessons) and again for the same accounts (a returning student).
  p50 and p95; the goal on 2 cores is p50 <= 10 s and p95 <= 30 s. The peer measured in the same
  run is the bare lab server: the same `jupyterhub-singleuser`'s JupyterLab started directly as
  the same Unix user, with no hub, token or seeding; the ratio column is against it.
* Memory: the hub with its proxy and services at rest, an idle lab, and its first kernel (USS:
  what each holds alone; RSS counts shared pages too).
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import ssl
import subprocess
import time

import httpx
import psutil
from starbox import account_removal, accounts, database
from starbox.jupyter.hub import admin, unix
from starbox.jupyter.hub.launch import hub_child
from starbox.jupyter.hub.paths import hub_dir, local_url, proxy_command
from starbox.settings import Settings

from bench.common import console, free_port, p50_p95, report

USERS = 6
MB = 1024 * 1024


def _tree(pids) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            p = psutil.Process(pid)
            out += [p, *p.children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    return out


def _user_procs(uid: int) -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]


def _memory(procs: list[psutil.Process]) -> tuple[float, float]:
    uss = rss = 0
    for p in procs:
        try:
            info = p.memory_full_info()
            uss, rss = uss + info.uss, rss + info.rss
        except psutil.Error:
            pass
    return uss / MB, rss / MB


def _login(settings: Settings, name: str, password: str, verify) -> httpx.Client:
    """A browser's session: the login page, its cookie."""
    c = httpx.Client(base_url=local_url(settings), verify=verify, timeout=60)
    c.get("/hub/login")
    r = c.post("/hub/login", data={"username": name, "password": password, "_xsrf": c.cookies.get("_xsrf")})
    if r.status_code != 302:
        raise RuntimeError(f"{name} could not log in: {r.status_code}")
    return c


def _xsrf(c: httpx.Client, prefix: str) -> str:
    return next(k.value for k in c.cookies.jar if k.name == "_xsrf" and k.path.startswith(prefix))


def _spawn(c: httpx.Client, name: str) -> float:
    """From the start page's Start to the lab answering the browser (through the lab's OAuth)."""
    t0 = time.perf_counter()
    form = {"_xsrf": _xsrf(c, "/hub"), "kernel": "python3", "size": "standard"}
    r = c.post("/hub/spawn", data=form)
    if r.status_code not in (200, 302, 303):
        raise RuntimeError(f"spawn of {name} refused: {r.status_code} {r.text[:200]}")
    while time.perf_counter() - t0 < 300:
        try:
            c.get(f"/user/{name}/lab", follow_redirects=True)
            if c.get(f"/user/{name}/api/status").status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name}'s lab did not come up in 300 s")


def _stop(c: httpx.Client, name: str) -> None:
    c.delete(f"/users/{name}/server")
    for _ in range(600):
        if not (c.get(f"/users/{name}").json().get("servers") or {}):
            return
        time.sleep(0.1)


def _bare_lab(settings: Settings, name: str) -> float:
    """The peer: the lab server alone, as the same user, to its first answer."""
    entry = unix.lookup(settings, name)
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            shutil.which("runuser") or "/usr/sbin/runuser",
            "-u",
            entry.pw_name,
            "--",
            str(settings.hub_env / "bin" / "jupyter-lab"),
            "--no-browser",
            f"--port={port}",
            "--ServerApp.token=bench",
            "--ServerApp.root_dir=" + entry.pw_dir,
        ],
        env={"HOME": entry.pw_dir, "PATH": f"{settings.hub_env / 'bin'}:/usr/bin:/bin", "JUPYTER_PLATFORM_DIRS": "1"},
        cwd=entry.pw_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        while time.perf_counter() - t0 < 120:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/status?token=bench", timeout=5).status_code == 200:
                    return time.perf_counter() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the bare lab did not come up in 120 s")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)


def can_run_hub(settings: Settings) -> bool:
    if os.geteuid() != 0 or not proxy_command(settings).exists() or not (settings.hub_env / "bin").exists():
        console.print("  skipped: needs root and `appliance/install.sh --hub`")
        return False
    return True


def bench_hub_settings(settings: Settings, user_prefix: str) -> tuple[Settings, dict]:
    """A bench hub's settings: free ports, no HTTP redirect, a Unix user prefix of its own. The
    environment its children read is set too; returns the old one, to put back."""
    changes = {
        "hub_port": free_port(),
        "hub_http_port": 0,
        "hub_api_port": free_port(),
        "hub_proxy_api_port": free_port(),
        "hub_user_prefix": user_prefix,
    }
    saved = dict(os.environ)
    os.environ.update({f"STARBOX_{k.upper()}": str(v) for k, v in changes.items()})
    return dataclasses.replace(settings, **changes), saved


def tear_down(hub, s: Settings, saved_env: dict, names: list[str]) -> None:
    """Stop the bench hub, put the environment back, remove its accounts with their Unix users."""
    hub.stop(timeout=60)
    os.environ.clear()
    os.environ.update(saved_env)
    with database.connect_admin(s) as conn:
        account_removal.remove(conn, s, names)  # their Unix users and homes too


def main(settings: Settings) -> None:
    console.print("[bold]Shared mode (JupyterHub) benchmarks[/]")
    if not can_run_hub(settings):
        return
    tag = secrets.token_hex(2)
    s, saved = bench_hub_settings(settings, f"sbb{tag}-")
    names = [f"benchhub{tag}{i}" for i in range(USERS)]
    passwords = {n: secrets.token_urlsafe(12) for n in names}
    with database.connect_admin(s) as conn:
        for n in names:
            accounts.add(conn, s, n, passwords[n])
    hub = hub_child(s)
    try:
        hub.start(s, timeout=120)
        verify = ssl.create_default_context(cafile=str(hub_dir(s) / "tls" / "ca.pem"))
        time.sleep(3)  # the hub's services start after its API answers
        hub_pids = [int((hub_dir(s) / "jupyterhub.pid").read_text()), int((hub_dir(s) / "proxy.pid").read_text())]
        at_rest = _memory(_tree(hub_pids))
        browsers = {n: _login(s, n, passwords[n], verify) for n in names}
        first = [_spawn(browsers[n], n) for n in names]
        # an idle lab and its first kernel, measured on the last one
        n = names[-1]
        uid = unix.lookup(s, n).pw_uid
        idle_lab = _memory(_user_procs(uid))
        c = browsers[n]
        kernels = f"/user/{n}/api/kernels"
        kernel = c.post(kernels, json={"name": "python3"}, headers={"X-XSRFToken": _xsrf(c, f"/user/{n}")}).json()
        time.sleep(5)  # the kernel imports and settles
        with_kernel = _memory(_user_procs(uid))
        c.delete(f"{kernels}/{kernel['id']}", headers={"X-XSRFToken": _xsrf(c, f"/user/{n}")})
        with admin.client(s) as api:
            for n in names:
                _stop(api, n)
            again = [_spawn(browsers[n], n) for n in names]
            for n in names:
                _stop(api, n)
        bare = [_bare_lab(s, n) for n in names]
        with admin.client(s) as api:
            for n in names:
                api.delete(f"/users/{n}")  # the hub forgets them too
    finally:
        tear_down(hub, s, saved, names)

    b50, b95 = p50_p95(bare)
    rows = []
    for label, samples in (("first spawn (new user)", first), ("spawn again", again), ("bare lab server", bare)):
        p50, p95 = p50_p95(samples)
        rows.append([label, p50, p95, p50 / b50, len(samples)])
    report(
        f"Spawn time on {os.cpu_count()} cores, s (goal: p50 <= 10, p95 <= 30)",
        ["path", "p50 s", "p95 s", "p50 / bare", "n"],
        rows,
        "hub_spawn",
    )
    kernel_only = (with_kernel[0] - idle_lab[0], with_kernel[1] - idle_lab[1])
    report(
        "Shared mode memory, MiB",
        ["what", "USS", "RSS"],
        [
            ["hub + proxy + services at rest", at_rest[0], at_rest[1]],
            ["one idle lab", idle_lab[0], idle_lab[1]],
            ["its first kernel", kernel_only[0], kernel_only[1]],
        ],
        "hub_memory",
    )


if __name__ == "__main__":
    from starbox import settings as settings_mod

    main(settings_mod.get())
