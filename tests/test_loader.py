"""`starbox catalog load`: every input format, metadata, refusals, and loads that fail midway."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from astropy.io import fits, votable
from astropy.table import Table

from starbox.catalogs import loader
from starbox.catalogs.manifest import read
from starbox.errors import StarboxError

from conftest import run_cli, settings_env

N = 5_000


def sample(n: int = N, seed: int = 1) -> Table:
    rng = np.random.default_rng(seed)
    t = Table()
    t["objid"] = np.arange(1, n + 1, dtype=np.int64)
    t["RA"] = rng.uniform(150, 151, n)
    t["Dec"] = rng.uniform(1, 2, n)
    t["gmag"] = rng.uniform(14, 22, n).astype(np.float32)
    t["name"] = [f"obj {i}" for i in range(n)]
    t["RA"].unit, t["Dec"].unit, t["gmag"].unit = "deg", "deg", "mag"
    return t


def write(t: Table, path: Path) -> Path:
    if path.suffix == ".csv":
        t.write(path, format="ascii.csv")
    elif path.suffix == ".parquet":
        pq.write_table(pa.table({c: np.asarray(t[c]) for c in t.colnames}), path)
    elif path.suffix == ".fits":
        t.write(path, format="fits")
    else:
        vt = votable.from_table(t)
        f = vt.get_first_table().fields
        f[1].ucd, f[2].ucd = "pos.eq.ra;meta.main", "pos.eq.dec;meta.main"
        f[3].description = "g magnitude from the file"
        vt.to_xml(str(path))
    return path


MANIFEST = """
table: {table}
description: A test catalog
schema_description: Test schema
ra: ra
dec: dec
pgsphere: true
columns:
  - {{name: objid, type: bigint, ucd: meta.id;meta.main, description: Object id}}
  - {{name: ra, type: double precision, unit: deg, ucd: pos.eq.ra;meta.main, description: Right ascension}}
  - {{name: dec, type: double precision, unit: deg, ucd: pos.eq.dec;meta.main, description: Declination}}
  - {{name: gmag, type: real, unit: mag, ucd: phot.mag;em.opt.B, description: "g magnitude, from the manifest"}}
  - {{name: name, type: text, description: Name}}
"""


@pytest.mark.api
@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".fits", ".vot"])
def test_round_trip_each_format_with_manifest(admin, tmp_path, suffix):
    table = f"loadtest.fmt_{suffix[1:]}"
    t = sample()
    path = write(t, tmp_path / f"in{suffix}")
    mpath = tmp_path / "m.yaml"
    mpath.write_text(MANIFEST.format(table=table))
    result = loader.load(admin, path, table, manifest=read(mpath), progress=False)
    assert result.rows == N and result.spatial
    rows = admin.execute(f"SELECT objid, ra, dec, gmag, name FROM {table} ORDER BY objid").fetchall()
    assert len(rows) == N
    assert [r[0] for r in rows] == list(t["objid"])
    assert np.allclose([r[1] for r in rows], t["RA"], rtol=0, atol=1e-12)
    assert np.allclose([r[3] for r in rows], t["gmag"], atol=1e-6)
    assert [r[4] for r in rows] == list(t["name"])
    meta = {r[0]: r[1:] for r in admin.execute(
        "SELECT column_name, unit, ucd, description, datatype FROM tap_schema.columns WHERE table_name=%s", (table,))}
    assert meta["gmag"] == ("mag", "phot.mag;em.opt.B", "g magnitude, from the manifest", "float")
    assert meta["objid"][3] == "long"
    assert admin.execute("SELECT description FROM tap_schema.tables WHERE table_name=%s", (table,)).fetchone()[0] == "A test catalog"
    assert admin.execute("SELECT nrows, ncols FROM tbl_stat WHERE schema='loadtest' AND tbl_name=%s",
                         (table.split(".")[1],)).fetchone() == (N, 5)
    idx = {r[0] for r in admin.execute("SELECT indexname FROM pg_indexes WHERE schemaname='loadtest' AND tablename=%s",
                                      (table.split(".")[1],))}
    name = table.split(".")[1]
    assert {f"{name}_q3c_idx", f"{name}_spoint_idx", f"{name}_objid_idx"} <= idx


@pytest.mark.api
@pytest.mark.parametrize("suffix", [".fits", ".vot"])
def test_units_and_ucds_come_from_the_file_without_manifest(admin, tmp_path, suffix):
    table = f"loadtest.bare_{suffix[1:]}"
    path = write(sample(200), tmp_path / f"in{suffix}")
    result = loader.load(admin, path, table, progress=False)
    assert result.spatial  # RA/Dec found by name
    meta = {r[0]: r[1:] for r in admin.execute(
        "SELECT column_name, unit, ucd, description FROM tap_schema.columns WHERE table_name=%s", (table,))}
    assert meta["ra"][0] == "deg" and meta["gmag"][0] == "mag"
    if suffix == ".vot":
        assert meta["ra"][1] == "pos.eq.ra;meta.main" and meta["gmag"][2] == "g magnitude from the file"


@pytest.mark.api
def test_csv_types_inferred_over_the_whole_file(admin, tmp_path):
    # ints for 300k rows, then a float: pyarrow alone would decide "int" from the first block
    path = tmp_path / "late.csv"
    with path.open("w") as fh:
        fh.write("id,ra,dec,flux\n")
        for i in range(300_000):
            fh.write(f"{i},{i % 360},{(i % 170) - 85},{i % 7}\n")
        fh.write("300000,1.0,2.0,3.5\n")
    loader.load(admin, path, "loadtest.late", progress=False)
    assert admin.execute("SELECT max(flux), pg_typeof(max(flux))::text FROM loadtest.late").fetchone() == (6.0, "double precision")


@pytest.mark.api
def test_existing_table_is_refused_without_replace(admin, tmp_path):
    path = write(sample(100), tmp_path / "a.parquet")
    loader.load(admin, path, "loadtest.keep", progress=False)
    with pytest.raises(StarboxError, match="loadtest.keep already exists: add --replace"):
        loader.load(admin, write(sample(50, seed=2), tmp_path / "b.parquet"), "loadtest.keep", progress=False)
    assert admin.execute("SELECT count(*) FROM loadtest.keep").fetchone()[0] == 100
    loader.load(admin, tmp_path / "b.parquet", "loadtest.keep", replace=True, progress=False)
    assert admin.execute("SELECT count(*) FROM loadtest.keep").fetchone()[0] == 50
    assert admin.execute("SELECT nrows FROM tbl_stat WHERE schema='loadtest' AND tbl_name='keep'").fetchone()[0] == 50


def _bad_csv(path: Path, bad_line: int, n: int = 200_000) -> Path:
    with path.open("w") as fh:
        fh.write("id,ra,dec,mag\n")
        for i in range(2, n + 2):
            mag = "abc" if i == bad_line else f"{(i % 100) / 10:.1f}"
            fh.write(f"{i},{i % 360}.5,{(i % 170) - 85}.5,{mag}\n")
    return path


TYPED = ("table: loadtest.{name}\ncolumns:\n  - {{name: id, type: integer}}\n  - {{name: ra, type: double precision}}\n"
         "  - {{name: dec, type: double precision}}\n  - {{name: mag, type: real}}\n")


@pytest.mark.api
def test_malformed_value_names_file_line_and_column(admin, tmp_path):
    path = _bad_csv(tmp_path / "bad.csv", bad_line=150_001)
    mpath = tmp_path / "m.yaml"
    mpath.write_text(TYPED.format(name="bad"))
    with pytest.raises(StarboxError) as err:
        loader.load(admin, path, "loadtest.bad", manifest=read(mpath), progress=False)
    msg = str(err.value)
    assert str(path) in msg and "line 150001" in msg and "column mag" in msg and '"abc"' in msg
    assert not loader.table_exists(admin, "loadtest", "bad")


@pytest.mark.api
def test_ragged_csv_names_the_line(admin, tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("id,ra,dec\n1,10,20\n2,11\n3,12,22\n")
    with pytest.raises(StarboxError, match=r"ragged.csv: line 3: expected 3 columns, found 2"):
        loader.load(admin, path, "loadtest.ragged", progress=False)


@pytest.mark.api
def test_manifest_type_error_names_row_and_column(admin, tmp_path):
    # the file parses, but a value does not fit the manifest's smallint: PostgreSQL says where
    path = tmp_path / "big.csv"
    path.write_text("id,ra,dec\n" + "".join(f"{i},{i},{i / 10}\n" for i in range(1, 40_000)))
    mpath = tmp_path / "m.yaml"
    mpath.write_text("table: loadtest.small\ncolumns:\n  - {name: id, type: smallint}\n"
                     "  - {name: ra, type: double precision}\n  - {name: dec, type: double precision}\n")
    with pytest.raises(StarboxError, match=r"big.csv: .*(row|line) .*column id"):
        loader.load(admin, path, "loadtest.small", manifest=read(mpath), progress=False)
    assert not loader.table_exists(admin, "loadtest", "small")


@pytest.mark.api
def test_failed_replace_keeps_the_old_table(admin, tmp_path):
    loader.load(admin, write(sample(300), tmp_path / "ok.parquet"), "loadtest.stable", progress=False)
    bad = _bad_csv(tmp_path / "bad.csv", bad_line=100_000)
    mpath = tmp_path / "m.yaml"
    mpath.write_text(TYPED.format(name="stable"))
    with pytest.raises(StarboxError, match="line 100000, column mag"):
        loader.load(admin, bad, "loadtest.stable", manifest=read(mpath), replace=True, progress=False)
    assert admin.execute("SELECT count(*) FROM loadtest.stable").fetchone()[0] == 300
    leftovers = admin.execute("SELECT relname FROM pg_class WHERE relname LIKE '%%_load_%%'").fetchall()
    assert leftovers == []


@pytest.mark.api
@pytest.mark.parametrize("name", ["nodot", "a.b.c", "Bad.Name", "x.y;drop", "public.t", "tap_schema.t"])
def test_invalid_table_names_are_refused(admin, tmp_path, name):
    path = write(sample(10), tmp_path / "a.parquet")
    with pytest.raises(StarboxError, match="invalid table name"):
        loader.load(admin, path, name, progress=False)


@pytest.mark.api
def test_unknown_and_missing_files(admin, tmp_path):
    with pytest.raises(StarboxError, match="no such file"):
        loader.load(admin, tmp_path / "nope.csv", "loadtest.x", progress=False)
    (tmp_path / "x.dat").write_text("1 2 3")
    with pytest.raises(StarboxError, match="unknown file type"):
        loader.load(admin, tmp_path / "x.dat", "loadtest.x", progress=False)
    (tmp_path / "x.fits").write_text("not fits at all")
    with pytest.raises(StarboxError, match="FITS"):
        loader.load(admin, tmp_path / "x.fits", "loadtest.x", progress=False)


@pytest.mark.system
def test_interrupted_load_leaves_nothing(starbox, admin, tmp_path):
    """Ctrl-C in the middle of COPY: the transaction rolls back; no table, no staging table."""
    path = tmp_path / "big.parquet"
    n = 3_000_000
    rng = np.random.default_rng(3)
    pq.write_table(pa.table({"ra": rng.uniform(0, 360, n), "dec": rng.uniform(-90, 90, n),
                             "mag": rng.uniform(10, 20, n)}), path, row_group_size=100_000)
    exe = Path(sys.executable).with_name("starbox")
    # As in a terminal, Ctrl-C is not ignored: a shell's background job (CI started with `&`) passes
    # an ignored SIGINT on to its children, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([str(exe), "catalog", "load", str(path), "--table", "loadtest.interrupted"],
                            env=settings_env(starbox), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # wait until COPY is running, then interrupt
    deadline = time.time() + 60
    while time.time() < deadline:
        active = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY _load%%'").fetchone()[0]
        if active:
            break
        time.sleep(0.05)
    assert active, "the load never reached COPY"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0, out + err
    assert "Traceback" not in err
    time.sleep(0.5)
    assert not loader.table_exists(admin, "loadtest", "interrupted")
    assert admin.execute("SELECT count(*) FROM tap_schema.tables WHERE table_name='loadtest.interrupted'").fetchone()[0] == 0


@pytest.mark.system
def test_cli_load_info_drop(starbox, admin, tmp_path):
    path = write(sample(1000), tmp_path / "cli.fits")
    proc = run_cli(starbox, "catalog", "load", str(path), "--table", "clitest.stars", "--pgsphere")
    assert proc.returncode == 0, proc.stderr
    assert "loaded 1,000 rows into clitest.stars" in proc.stdout
    again = run_cli(starbox, "catalog", "load", str(path), "--table", "clitest.stars")
    assert again.returncode == 1 and "already exists: add --replace" in again.stderr and "Traceback" not in again.stderr
    info = run_cli(starbox, "catalog", "info", "clitest.stars")
    assert "1,000 rows" in info.stdout and "stars_spoint_idx" in info.stdout and "deg" in info.stdout
    listing = run_cli(starbox, "catalog", "list")
    assert "clitest.stars" in listing.stdout and "hipparcos.main" in listing.stdout
    dropped = run_cli(starbox, "catalog", "drop", "clitest.stars", "--yes")
    assert dropped.returncode == 0
    assert not loader.table_exists(admin, "clitest", "stars")
    assert admin.execute("SELECT count(*) FROM tap_schema.schemas WHERE schema_name='clitest'").fetchone()[0] == 0
    assert admin.execute("SELECT count(*) FROM tbl_stat WHERE schema='clitest'").fetchone()[0] == 0
    missing = run_cli(starbox, "catalog", "drop", "clitest.stars", "--yes")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
