"""openngc.objects from pyongc's bundled OpenNGC SQLite database (its RA/Dec are radians)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pyarrow as pa

from starbox.catalogs._parquet import write_atomic

COLUMNS = [
    "name",
    "type",
    "type_desc",
    "ra",
    "dec",
    "const",
    "majax",
    "minax",
    "pa",
    "bmag",
    "vmag",
    "jmag",
    "hmag",
    "kmag",
    "sbrightn",
    "hubble",
    "parallax",
    "pmra",
    "pmdec",
    "radvel",
    "redshift",
    "messier",
    "ngc",
    "ic",
    "identifiers",
    "commonnames",
]


def build(outdir: Path) -> dict[str, Path]:
    import pyongc

    db = Path(pyongc.__file__).parent / "ongc.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT o.name, o.type, t.typedesc, o.ra, o.dec, o.const, o.majax, o.minax, o.pa, o.bmag, o.vmag,"
            " o.jmag, o.hmag, o.kmag, o.sbrightn, o.hubble, o.parallax, o.pmra, o.pmdec, o.radvel, o.redshift,"
            " o.messier, o.ngc, o.ic, o.identifiers, o.commonnames"
            " FROM objects o LEFT JOIN objTypes t ON t.type = o.type ORDER BY o.id"
        ).fetchall()
    cols = {name: [r[i] for r in rows] for i, name in enumerate(COLUMNS)}
    for name in ("ra", "dec"):
        cols[name] = [None if v is None else float(np.degrees(v)) for v in cols[name]]
    text = {"name", "type", "type_desc", "const", "hubble", "messier", "ngc", "ic", "identifiers", "commonnames"}
    ints = {"pa", "radvel"}
    arrays = {}
    for name in COLUMNS:
        values = cols[name]
        if name in text:
            # Empty strings mean "none" in OpenNGC; store NULL so IS NULL works.
            arrays[name] = pa.array([v if v not in ("", None) else None for v in values], pa.string())
        elif name in ints:
            arrays[name] = pa.array(values, pa.int32())
        else:
            arrays[name] = pa.array(values, pa.float64() if name in ("ra", "dec") else pa.float32())
    return {"openngc.objects": write_atomic(pa.table(arrays), outdir / "openngc_objects.parquet")}
