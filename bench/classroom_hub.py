"""Issue 14's benchmark, shared mode: a class of thirty logs in to the hub within a minute.

A class is made with `classes.create` (as `starbox accounts class add` does) and a hub is started
on free ports (as root: it makes the students' Unix users). Each student, at a random moment
within `spread` seconds, logs in through the login form over HTTPS and opens the start page, which
spawns their lab; the time is from the login to the lab answering through the public port (its
OAuth done), and every failure is counted (the goal: none, all ready within 2 minutes). Then the
labs are stopped, `admin.prewarm` starts them all again before the "lesson" (timed), and the class
logs in once more: with labs already running, login to lab is what a prewarmed class waits.
Memory of the hub and the thirty labs at their peak (USS) is reported too.
"""

from __future__ import annotations

import dataclasses
import os
import random
import secrets
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from starbox import classes, database
from starbox.jupyter.hub import admin, unix
from starbox.jupyter.hub.launch import hub_child
from starbox.jupyter.hub.paths import hub_dir
from starbox.settings import Settings

from bench.common import console, p50_p95, report
from bench.hub_bench import _login, _memory, _stop, _tree, _user_procs, bench_hub_settings, can_run_hub, tear_down

READY_WITHIN = 120.0  # s: the goal for every lab of the class


@dataclasses.dataclass
class Login:
    name: str
    seconds: float | None = None  # from the login form to the lab answering
    error: str = ""


def _log_in_and_open(settings: Settings, name: str, password: str, delay: float, verify) -> Login:
    out = Login(name)
    time.sleep(delay)
    t0 = time.perf_counter()
    try:
        c = _login(settings, name, password, verify)
        try:
            r = c.get("/hub/spawn")  # the start page: a class account's lab starts, no form
            if r.status_code >= 400:
                raise RuntimeError(f"the start page answered {r.status_code}")
            while time.perf_counter() - t0 < 300:
                try:
                    c.get(f"/user/{name}/lab", follow_redirects=True)
                    if c.get(f"/user/{name}/api/status").status_code == 200:
                        out.seconds = time.perf_counter() - t0
                        return out
                except httpx.HTTPError:
                    pass
                time.sleep(0.3)
            raise RuntimeError("the lab did not answer within 300 s")
        finally:
            c.close()
    except Exception as exc:  # noqa: BLE001 - counted, reported
        out.error = f"{type(exc).__name__}: {exc}"
    return out


def _class_logs_in(settings, issued, spread: float, verify) -> tuple[list[Login], float]:
    rng = random.Random(30)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(issued)) as pool:
        result = list(
            pool.map(lambda np: _log_in_and_open(settings, np[0], np[1], rng.uniform(0, spread), verify), issued)
        )
    return result, time.perf_counter() - t0


def _row(label: str, result: list[Login], wall: float) -> list:
    done = [r.seconds for r in result if r.seconds is not None]
    p50, p95 = p50_p95(done) if len(done) > 1 else ((done or [float("nan")])[0],) * 2
    late = sum(1 for s in done if s > READY_WITHIN)
    return [label, len(done), len(result) - len(done), p50, p95, max(done, default=float("nan")), late, wall]


def main(settings: Settings, students: int = 30, spread: float = 60.0) -> None:
    console.print(f"[bold]Class day in shared mode: {students} logins within {spread:.0f} s[/]")
    if not can_run_hub(settings):
        return
    tag = secrets.token_hex(2)
    s, saved = bench_hub_settings(settings, f"sbc{tag}-")
    class_name = f"day{tag}"
    with database.connect_admin(s) as conn:
        _, issued = classes.create(conn, s, class_name, students, days=1)
    names = [n for n, _ in issued]
    hub = hub_child(s)
    peak = (0.0, 0.0)
    try:
        hub.start(s, timeout=120)
        verify = ssl.create_default_context(cafile=str(hub_dir(s) / "tls" / "ca.pem"))
        time.sleep(3)  # the hub's services start after its API answers
        cold, cold_wall = _class_logs_in(s, issued, spread, verify)
        hub_pids = [int((hub_dir(s) / "jupyterhub.pid").read_text()), int((hub_dir(s) / "proxy.pid").read_text())]
        procs = _tree(hub_pids)
        for n in names:
            entry = unix.lookup(s, n)  # None: no lab ever started for them
            procs += _user_procs(entry.pw_uid) if entry else []
        peak = _memory(procs)
        with admin.client(s) as api:
            for n in names:
                _stop(api, n)
        t0 = time.perf_counter()
        outcome = admin.prewarm(s, class_name, log=lambda line: None)
        prewarm_s = time.perf_counter() - t0
        prewarmed = sum(1 for v in outcome.values() if v == "ready")
        warm, warm_wall = _class_logs_in(s, issued, spread, verify)
        with admin.client(s) as api:
            for n in names:
                _stop(api, n)
                api.delete(f"/users/{n}")
    finally:
        tear_down(hub, s, saved, names)
    for r in cold + warm:
        if r.error:
            console.print(f"  [red]{r.name}: {r.error}[/]")
    report(
        f"Class day, shared mode: {students} class accounts log in within {spread:.0f} s through the hub's "
        f"login form (HTTPS) and open their lab; s from login to the lab answering, on {os.cpu_count()} cores "
        f"(goal: no failures, all within {READY_WITHIN:.0f} s)",
        ["class", "ready", "failed", "p50 s", "p95 s", "max s", f"later than {READY_WITHIN:.0f} s", "wall s"],
        [
            _row("labs started at login", cold, cold_wall),
            _row(f"prewarmed first ({prewarmed} ready in {prewarm_s:.0f} s)", warm, warm_wall),
        ],
        "classroom_hub",
    )
    report(
        f"Class day, shared mode: memory with {students} labs running, MiB",
        ["what", "USS", "RSS"],
        [["hub, proxy, services and the labs", peak[0], peak[1]]],
        "classroom_hub_memory",
    )


if __name__ == "__main__":
    from starbox import settings as settings_mod

    main(settings_mod.get())
