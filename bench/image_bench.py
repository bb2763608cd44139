"""Images (issue 16): a 2' cutout of a simulated DECam stack through /svc/cutout, against the
bare database query for the objects it is drawn from, centres taking turns. Goal: p50 and p95
of the cutout at most 100 ms."""

from __future__ import annotations

import numpy as np
from starbox import database
from starbox import settings as settings_mod
from starbox.images import synth

from bench.common import console, report, side_by_side

HYDRA_II = (185.4286, -31.9728)


def bench_cutouts(s: settings_mod.Settings, repeat: int = 100) -> None:
    import httpx

    rng = np.random.default_rng(16)
    centres = [(HYDRA_II[0] + dx, HYDRA_II[1] + dy) for dx, dy in rng.uniform(-0.5, 0.5, (repeat, 2))]
    size = 2 / 60
    with database.connect_admin(s) as conn, httpx.Client(base_url=s.service_url, timeout=60) as http:

        def bare(i):
            ra, dec = centres[i % repeat]
            sql, args = synth.catalog_query(ra, dec, 0.5 * np.hypot(size, size) + 20 / 3600)
            conn.execute(sql, args).fetchall()

        def cutout(i):
            ra, dec = centres[i % repeat]
            r = http.get(
                "/svc/cutout",
                params={
                    "col": "smash_sim",
                    "siaRef": "smash_sim_169_stack_g.fits",
                    "POS": f"{ra},{dec}",
                    "SIZE": f"{size / np.cos(np.radians(dec))},{size}",
                },
            )
            r.raise_for_status()

        times = side_by_side({"bare": bare, "cutout": cutout}, repeat)
    (b50, b95), (c50, c95) = times["bare"], times["cutout"]
    report(
        f"2' cutout of the g stack (456 x 456 pixels), {repeat} centres, taking turns (ms; goal <= 100)",
        ["path", "p50", "p95", "p50 ratio"],
        [
            ["psycopg: the objects it is drawn from (bare database)", b50, b95, 1.0],
            ["/svc/cutout, FITS", c50, c95, c50 / b50],
        ],
        "image_cutout",
    )


def main(s: settings_mod.Settings) -> None:
    with database.connect_admin(s) as conn:
        if not conn.execute("SELECT to_regclass('smash_sim.object')").fetchone()[0]:
            console.print("[yellow]image bench: smash_sim.object is not loaded; skipped[/]")
            return
    bench_cutouts(s)


if __name__ == "__main__":
    main(settings_mod.get())
