"""Issue 4's benchmarks: TAP /sync cones (VOTable and CSV) against the same SQL through psycopg,
and a million rows through /tap/sync as Parquet and as VOTable against psycopg COPY into pandas.

The catalog is smash_sim.object (1.9 million objects around Hydra II). When it is not loaded,
gaia_dr3.gaia_source_bright stands in (482,000 stars over the whole sky, so cones hold far
fewer rows and "a million rows" is the whole table); the report says which one ran.

Run alone against a running appliance: `python -m bench.tap_bench` (STARBOX_* as for `starbox up`).
"""

from __future__ import annotations

import io

import numpy as np
from starbox import database
from starbox import settings as settings_mod

from bench.common import console, copy_to_pandas, report, report_against_bare, side_by_side, timed

HYDRA_II = (185.4286, -31.9728)
CATALOGS = {
    "smash_sim.object": ("id, ra, dec, gmag, rmag", HYDRA_II, 0.8),
    "gaia_dr3.gaia_source_bright": ("source_id, ra, dec, phot_g_mean_mag", None, None),
}


def _catalog(s: settings_mod.Settings) -> str:
    with database.connect_admin(s) as conn:
        for name in CATALOGS:
            if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0]:
                return name
    raise SystemExit("tap_bench: neither smash_sim.object nor gaia_dr3.gaia_source_bright is loaded")


def _centres(table: str, n: int) -> list[tuple[float, float]]:
    rng = np.random.default_rng(4)
    _, centre, spread = CATALOGS[table]
    if centre:
        return [(float(centre[0] + dx), float(centre[1] + dy)) for dx, dy in rng.uniform(-spread, spread, (n, 2))]
    # Uniform on the sphere, away from the poles' few stars.
    return [
        (float(ra), float(np.degrees(np.arcsin(z)))) for ra, z in zip(rng.uniform(0, 360, n), rng.uniform(-0.9, 0.9, n))
    ]


def _sql_of(s: settings_mod.Settings, conn, adql: str) -> str:
    """The SQL the service runs for `adql` (queryparser, then the index rewriting)."""
    from starbox.accounts import ANONYMOUS
    from starbox.tap import adql as adql_mod
    from starbox.tap import geometry

    sql, _ = adql_mod.translate(adql, ANONYMOUS)
    return geometry.rewrite(sql, lambda tables: geometry.load_indexes(conn, tables))


def bench_cones(s: settings_mod.Settings, table: str, repeat: int = 200) -> None:
    import httpx

    cols = CATALOGS[table][0]
    rows = []
    with database.connect_admin(s) as conn, httpx.Client(base_url=s.service_url, timeout=120) as http:
        for radius, n in ((0.1, repeat), (1.0, max(20, repeat // 10))):
            centres = _centres(table, n)
            adqls = [
                f"SELECT {cols} FROM {table} WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
                f"CIRCLE('ICRS', {ra!r}, {dec!r}, {radius}))"
                for ra, dec in centres
            ]
            sqls = [_sql_of(s, conn, q) for q in adqls]
            counts = []

            def bare(i):
                counts.append(len(conn.execute(sqls[i % n], prepare=False).fetchall()))

            def tap(fmt):
                def run(i):
                    r = http.post(
                        "/tap/sync", data={"LANG": "ADQL", "QUERY": adqls[i % n], "FORMAT": fmt, "MAXREC": "5000000"}
                    )
                    r.raise_for_status()

                return run

            times = side_by_side({"bare": bare, "votable": tap("votable"), "csv": tap("csv")}, n)
            b50, b95 = times["bare"]
            rows.append([f"{radius}° psycopg, the same SQL (bare)", int(np.median(counts)), b50, b95, 1.0])
            for fmt in ("votable", "csv"):
                t50, t95 = times[fmt]
                rows.append([f"{radius}° /tap/sync {fmt}", "", t50, t95, t50 / b50])
    report(
        f"Cones on {table} through TAP ({repeat} centres for 0.1°, fewer for 1°; ms)",
        ["path", "median rows", "p50", "p95", "p50 ratio"],
        rows,
        "tap_cones",
    )


def bench_million(s: settings_mod.Settings, table: str, rounds: int = 2) -> None:
    import httpx
    import pyarrow.parquet as pq
    from astropy.io.votable import parse_single_table

    cols = CATALOGS[table][0]
    n = 1_000_000
    adql = f"SELECT TOP {n} {cols} FROM {table}"
    with database.connect_admin(s) as conn:
        sql = _sql_of(s, conn, adql)
        expected = conn.execute(f"SELECT count(*) FROM ({sql}) q").fetchone()[0]

    def fetch(fmt: str) -> bytes:
        r = httpx.post(
            f"{s.service_url}/tap/sync",
            data={"LANG": "ADQL", "QUERY": adql, "FORMAT": fmt, "MAXREC": str(n)},
            timeout=900,
        )
        r.raise_for_status()
        return r.content

    def parquet(_):
        assert len(pq.read_table(io.BytesIO(fetch("parquet"))).to_pandas()) == expected

    def votable(_):
        assert len(parse_single_table(io.BytesIO(fetch("votable"))).to_table()) == expected

    def votable_bytes(_):
        fetch("votable")

    def bare(_):
        assert len(copy_to_pandas(s, sql)) == expected

    t_bare = min(timed(bare, rounds, warmup=1))
    t_parquet = min(timed(parquet, rounds, warmup=1))
    t_vot_wire = min(timed(votable_bytes, rounds, warmup=0))
    t_vot = min(timed(votable, 1, warmup=0))
    report_against_bare(
        f"{expected:,} rows × {len(cols.split(','))} columns of {table} (best of {rounds}; s)",
        t_bare,
        [
            ("/tap/sync parquet → pyarrow → pandas", t_parquet),
            ("/tap/sync votable (BINARY2), bytes only", t_vot_wire),
            ("/tap/sync votable (BINARY2) → astropy Table", t_vot),
        ],
        "tap_million",
    )


def main(s: settings_mod.Settings) -> None:
    table = _catalog(s)
    note = "" if table == "smash_sim.object" else " (smash_sim.object is not loaded: using gaia_dr3.gaia_source_bright)"
    console.print(f"[bold]TAP benchmarks[/] on {table}{note}")
    bench_cones(s, table)
    bench_million(s, table)


if __name__ == "__main__":
    main(settings_mod.get())
