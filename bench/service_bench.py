"""Issue 3's benchmarks: a 0.1° cone through the service against psycopg, and one million rows
into pandas through the toolkit (Arrow and CSV, over HTTP and in-process) and the real dl
client, against psycopg COPY."""

from __future__ import annotations

import os
import subprocess

import numpy as np
from starbox import database, inprocess
from starbox import settings as settings_mod

from bench.common import ROOT, console, copy_to_pandas, report, report_against_bare, side_by_side, timed

HYDRA_II = (185.4286, -31.9728)
MILLION = "SELECT id, ra, dec, gmag, rmag FROM smash_sim.object LIMIT 1000000"
DL_PYTHON = ROOT / ".venv-datalab" / "bin" / "python"


def bench_cone(s: settings_mod.Settings, repeat: int = 200) -> None:
    import httpx

    rng = np.random.default_rng(99)
    centres = [(HYDRA_II[0] + dx, HYDRA_II[1] + dy) for dx, dy in rng.uniform(-0.8, 0.8, (repeat, 2))]
    sql = "SELECT id, ra, dec, gmag, rmag FROM smash_sim.object WHERE q3c_radial_query(ra, dec, {}, {}, 0.1)"
    rows = []
    with database.connect_admin(s) as conn, httpx.Client(base_url=s.service_url, timeout=60) as http:

        def bare(i):
            conn.execute(sql.format(*centres[i % repeat]), prepare=False).fetchall()

        def service(i):
            r = http.get("/query/query", params={"sql": sql.format(*centres[i % repeat]), "ofmt": "csv"})
            r.raise_for_status()

        times = side_by_side({"bare": bare, "service": service}, repeat)
    (b50, b95), (s50, s95) = times["bare"], times["service"]
    rows.append(["psycopg (bare database)", b50, b95, 1.0])
    rows.append(["service /query/query, CSV", s50, s95, s50 / b50])
    report(
        f"0.1° cone on smash_sim.object, {repeat} centres, taking turns (ms)",
        ["path", "p50", "p95", "p50 ratio"],
        rows,
        "service_cone",
    )


def _dl_client_million(s) -> float:
    script = (
        "import time, socket\n"
        "from dl import queryClient as qc\n"
        f"qc.set_svc_url('{s.service_url}/query')\n"
        "t0 = time.perf_counter()\n"
        f"df = qc.query(sql={MILLION!r}, fmt='pandas', timeout=600)\n"
        "assert len(df) == 1000000\n"
        "print(time.perf_counter() - t0)\n"
    )
    proc = subprocess.run(
        [str(DL_PYTHON), "-c", script],
        capture_output=True,
        text=True,
        timeout=900,
        env={"PATH": os.environ["PATH"], "HOME": "/tmp"},
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    return float(proc.stdout.strip().splitlines()[-1])


def bench_million(s: settings_mod.Settings, rounds: int = 3) -> None:
    from starbox import queryClient as qc

    qc.set_svc_url(f"{s.service_url}/query")

    def arrow(_):
        assert len(qc.query(sql=MILLION, fmt="arrow", timeout=600)) == 1_000_000

    def csv(_):
        assert len(qc.query(sql=MILLION, fmt="pandas", timeout=600)) == 1_000_000

    def bare(_):
        assert len(copy_to_pandas(s, MILLION)) == 1_000_000

    t_bare = min(timed(bare, rounds, warmup=1))
    t_arrow = min(timed(arrow, rounds, warmup=1))
    t_csv = min(timed(csv, rounds, warmup=0))
    inprocess.start(s)  # the same calls, served by the service's application in this process
    try:
        t_arrow_ip = min(timed(arrow, rounds, warmup=1))
        t_csv_ip = min(timed(csv, rounds, warmup=0))
    finally:
        inprocess.stop()
    t_dl = min(_dl_client_million(s) for _ in range(2))
    report_against_bare(
        f"One million rows × 5 columns into a pandas DataFrame (best of {rounds})",
        t_bare,
        [
            ("starbox toolkit, fmt='arrow'", t_arrow),
            ("starbox toolkit, CSV (fmt='pandas')", t_csv),
            ("starbox toolkit in-process, fmt='arrow'", t_arrow_ip),
            ("starbox toolkit in-process, CSV (fmt='pandas')", t_csv_ip),
            ("real dl client 2.24.0, CSV (fmt='pandas')", t_dl),
        ],
        "service_million",
    )


def main(s: settings_mod.Settings) -> None:
    console.print("[bold]service benchmarks[/]")
    bench_cone(s)
    bench_million(s)
