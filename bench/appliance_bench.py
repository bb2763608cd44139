"""Issue 2's benchmarks: `make up` cold and warm, catalog loading against bare COPY + CREATE
INDEX, and q3c against pgsphere cones on smash_sim.object."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from starbox import database
from starbox import settings as settings_mod
from starbox.catalogs import loader
from starbox.catalogs.manifest import read

from bench.common import ROOT, console, free_port, p50_p95, report, timed

HYDRA_II = (185.4286, -31.9728)


def make_up(env: dict) -> tuple[subprocess.Popen, float]:
    """Start `make up`; return the process and the seconds until it printed its ready line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        ["make", "-s", "up"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    for line in proc.stdout:
        if "Press Ctrl-C" in line:
            return proc, time.perf_counter() - t0
    raise RuntimeError(f"make up ended without becoming ready (exit {proc.wait()})")


def stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)


def bench_up(env: dict) -> list[list]:
    proc, cold = make_up(env)
    stop(proc)
    proc, warm = make_up(env)
    stop(proc)
    report(
        "make up (packages installed)",
        ["run", "seconds to ready"],
        [["cold: empty STARBOX_HOME, builds every catalog", cold], ["warm: second make up", warm]],
        "make_up",
    )
    return [cold, warm]


def _csv_file(path: Path, n: int) -> None:
    rng = np.random.default_rng(2024)
    with path.open("wb") as fh:
        first = True
        for start in range(0, n, 500_000):
            k = min(500_000, n - start)
            batch = pa.table(
                {
                    "id": np.arange(start, start + k, dtype=np.int64),
                    "ra": rng.uniform(0, 360, k),
                    "dec": np.degrees(np.arcsin(rng.uniform(-1, 1, k))),
                    "mag": rng.uniform(12, 24, k).astype(np.float32),
                }
            )
            pacsv.write_csv(batch, fh, pacsv.WriteOptions(include_header=first))
            first = False


def bench_load(s: settings_mod.Settings, n: int = 2_000_000, rounds: int = 2) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "points.csv"
        _csv_file(path, n)
        mpath = Path(tmp) / "m.yaml"
        mpath.write_text(
            "table: benchload.typed\nra: ra\ndec: dec\ncolumns:\n  - {name: id, type: bigint}\n"
            "  - {name: ra, type: double precision}\n  - {name: dec, type: double precision}\n"
            "  - {name: mag, type: real}\n"
        )
        manifest = read(mpath)
        rows = []
        with database.connect_admin(s) as conn:

            def bare(_):
                conn.execute("DROP TABLE IF EXISTS benchload.bare")
                conn.execute("CREATE SCHEMA IF NOT EXISTS benchload")
                conn.execute(
                    "CREATE TABLE benchload.bare (id bigint, ra double precision, dec double precision, mag real)"
                )
                with (
                    conn.cursor().copy("COPY benchload.bare FROM STDIN (FORMAT csv, HEADER true)") as copy,
                    path.open("rb") as fh,
                ):
                    while chunk := fh.read(8 << 20):
                        copy.write(chunk)
                conn.execute("CREATE INDEX ON benchload.bare (q3c_ang2ipix(ra, dec))")

            def ours_typed(_):
                loader.load(conn, path, "benchload.typed", manifest=manifest, replace=True, progress=False)

            def ours_inferred(_):
                loader.load(conn, path, "benchload.inferred", replace=True, progress=False)

            t_bare = timed(bare, rounds, warmup=0)
            t_typed = timed(ours_typed, rounds, warmup=0)
            t_inferred = timed(ours_inferred, rounds, warmup=0)
        b = min(t_bare)
        rows.append(["bare COPY + CREATE INDEX (q3c)", b, 1.0])
        rows.append(["starbox catalog load, manifest types", min(t_typed), min(t_typed) / b])
        rows.append(["starbox catalog load, types inferred", min(t_inferred), min(t_inferred) / b])
        report(
            f"Loading a {n:,}-row CSV (best of {rounds}); ours also sorts by q3c pixel, ANALYZEs, fills TAP_SCHEMA",
            ["method", "seconds", "ratio to bare"],
            rows,
            "catalog_load",
        )


def bench_cones(s: settings_mod.Settings, repeat: int = 200) -> None:
    rng = np.random.default_rng(12345)
    centres = [(HYDRA_II[0] + dx, HYDRA_II[1] + dy) for dx, dy in rng.uniform(-0.8, 0.8, (repeat, 2))]
    q3c = "SELECT id, ra, dec, gmag FROM smash_sim.object WHERE q3c_radial_query(ra, dec, %s, %s, %s)"
    sph = (
        "SELECT id, ra, dec, gmag FROM smash_sim.object WHERE spoint(radians(ra), radians(dec)) <@"
        " scircle(spoint(radians(%s), radians(%s)), radians(%s))"
    )
    rows = []
    with database.connect_admin(s) as conn:
        for radius in (0.1, 1.0):
            for name, query in (("q3c", q3c), ("pgsphere", sph)):
                counts = []

                def run(i):
                    ra, dec = centres[i % len(centres)]
                    counts.append(len(conn.execute(query, (ra, dec, radius), prepare=False).fetchall()))

                p50, p95 = p50_p95([t * 1000 for t in timed(run, repeat)])
                rows.append([f"{name} {radius}°", int(np.median(counts)), p50, p95])
    report(
        f"Cone searches on smash_sim.object ({repeat} centres around Hydra II, literal SQL)",
        ["method", "median rows", "p50 ms", "p95 ms"],
        rows,
        "cones",
    )


def main(extra=()) -> None:
    """Cold and warm `make up`, then the benches of this module and `extra` on the running appliance."""
    home = Path(tempfile.mkdtemp(prefix="starbox-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARBOX_")}
    env.update(
        STARBOX_HOME=str(home),
        STARBOX_PG_PORT=str(free_port()),
        STARBOX_SERVICE_PORT=str(free_port()),
        STARBOX_JUPYTER_PORT=str(free_port()),
        STARBOX_VOILA_PORT=str(free_port()),
    )
    console.print(f"[bold]appliance benchmarks[/] in {home}")
    bench_up(env)
    s = settings_mod.load(env)
    proc, _ = make_up(env)
    try:
        bench_cones(s)
        bench_load(s)
        for bench in extra:
            bench(s)
    finally:
        stop(proc)


if __name__ == "__main__":
    main()
