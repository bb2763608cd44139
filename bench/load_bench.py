"""Issue 11's benchmark: the service under a mixed load (locust, against 127.0.0.1 only, bounded).

Phase 1: 30 well-behaved users (bench/load_users.py: logins, cone searches, TAP sync, MyDB
writes, storage puts) for `seconds` (2 minutes). Phase 2: the same plus 10 abusive anonymous
clients (slow queries, huge results, deeply nested ADQL, password guesses). Reported: the
well-behaved users' error rate (goal 0), their p50 and p95 in each phase and the p95 ratio
(goal <= 1.5), and the service's peak RSS (psutil, the service process and its children).

Each phase runs locust in a subprocess (locust patches the standard library with gevent).
`python -m bench.load_bench [--seconds 30]` runs against the appliance of the current settings;
BENCH_LOAD_SECONDS sets the phase length under `make bench` too (a shorter trial).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from starbox import accounts, database, storage_home
from starbox import settings as settings_mod

from bench.common import OUTPUT, ROOT, console, p50_p95, report

GOOD, ABUSERS = 30, 10
PREFIX, VICTIM = "load_u", "load_victim"
PASSWORD = "load-bench-pw-1"
MB = 1024 * 1024


def _phase_seconds() -> float:
    return float(os.environ.get("BENCH_LOAD_SECONDS") or 120)


def make_users(s: settings_mod.Settings) -> None:
    """The students (and the account the abusers guess passwords of), as `starbox accounts add` makes them."""
    with database.connect_admin(s) as conn:
        for name in [f"{PREFIX}{i:02d}" for i in range(GOOD)] + [VICTIM]:
            if not conn.execute("SELECT 1 FROM starbox.accounts WHERE username = %s", (name,)).fetchone():
                accounts.add(conn, s, name, PASSWORD)
            storage_home.create(s, name)


def service_process(s: settings_mod.Settings) -> psutil.Process:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == s.service_port and conn.pid:
            return psutil.Process(conn.pid)
    raise SystemExit(f"load_bench: nothing listens on the service port {s.service_port}")


class PeakRss:
    """Samples the RSS of a process and its children (twice a second) while running."""

    def __init__(self, proc: psutil.Process):
        self.proc, self.peak, self._stop = proc, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            total = 0
            try:
                for p in [self.proc, *self.proc.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            self.peak = max(self.peak, total)
            self._stop.wait(0.5)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_phase(s: settings_mod.Settings, seconds: float, abusers: int, tmp: Path) -> dict:
    out = tmp / f"phase-{abusers}.json"
    url = f"http://127.0.0.1:{s.service_port}"  # 127.0.0.1 only, whatever STARBOX_URL says
    cmd = [
        sys.executable,
        "-m",
        "bench.load_users",
        "--url",
        url,
        "--seconds",
        str(seconds),
        "--good",
        str(GOOD),
        "--abusers",
        str(abusers),
        "--prefix",
        PREFIX,
        "--password",
        PASSWORD,
        "--victim",
        VICTIM,
        "--out",
        str(out),
    ]
    with PeakRss(service_process(s)) as rss:
        proc = subprocess.run(
            cmd,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=seconds + 400,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))},
        )
    if proc.returncode != 0:
        raise RuntimeError(f"load_users failed:\n{proc.stderr[-3000:]}")
    result = json.loads(out.read_text())
    result["peak_rss_mb"] = rss.peak / MB
    return result


def main(s: settings_mod.Settings, seconds: float | None = None) -> dict:
    seconds = seconds or _phase_seconds()
    console.print(f"[bold]mixed load[/]: {GOOD} users for {seconds:g} s, then the same with {ABUSERS} abusive clients")
    make_users(s)
    with tempfile.TemporaryDirectory(prefix="starbox-load-") as tmp:
        calm = run_phase(s, seconds, 0, Path(tmp))
        time.sleep(5)  # let the first phase's last requests end
        mixed = run_phase(s, seconds, ABUSERS, Path(tmp))
    rows = []
    for label, r in (("30 users", calm), (f"30 users + {ABUSERS} abusive clients", mixed)):
        p50, p95 = p50_p95(r["ms"]) if len(r["ms"]) >= 2 else (float("nan"), float("nan"))
        rate = r["failures"] / r["requests"] if r["requests"] else float("nan")
        rows.append(
            [
                f"{label} (after {r['warmup_s']:g} s warm-up)",
                r["requests"],
                r["failures"],
                round(100 * rate, 2),
                p50,
                p95,
                r["peak_rss_mb"],
            ]
        )
    ratio = rows[1][5] / rows[0][5] if rows[0][5] else float("nan")
    rows.append(["p95 ratio (with / without abusers; goal <= 1.5)", "", "", "", "", round(ratio, 2), ""])
    report(
        f"Mixed load on the service, {seconds:g} s per phase (well-behaved users' requests)",
        ["phase", "requests", "errors", "error %", "p50 ms", "p95 ms", "service peak RSS MB"],
        rows,
        "load_mixed",
    )
    details = {
        "calm": {k: v for k, v in calm.items() if k != "ms"},
        "mixed": {k: v for k, v in mixed.items() if k != "ms"},
    }
    (OUTPUT / "load_mixed_details.json").write_text(json.dumps(details, indent=1))
    for label, r in (("calm", calm), ("mixed", mixed)):
        for error, n in sorted(r["errors"].items(), key=lambda kv: -kv[1])[:8]:
            console.print(f"  {label}: {n} × {error}", highlight=False)
    console.print(f"  abusive clients got: {mixed['abuse']}", highlight=False)
    return details


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=None, help="length of each phase (default 120)")
    main(settings_mod.get(), ap.parse_args().seconds)
