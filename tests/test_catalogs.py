"""The sample catalogs in the database: row counts, known objects, indexes and metadata."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.api

HYDRA_II = (185.4286, -31.9728)
HYDRA_QUERY = """
SELECT count(*) FROM smash_sim.object
WHERE fieldid = '169' AND depthflag > 1 AND ndetr > 3 AND ndetg > 3 AND abs(sharp) < 0.5
  AND gmag BETWEEN 9 AND 25 AND (gmag-rmag) BETWEEN -0.4 AND 0.4
"""


def _has(admin, table):
    schema, name = table.split(".")
    return admin.execute("SELECT 1 FROM pg_tables WHERE schemaname=%s AND tablename=%s", (schema, name)).fetchone()


@pytest.mark.parametrize("table,rows", [
    ("hipparcos.main", 117_955),
    ("gaia_dr3.gaia_source_bright", 482_176),
    ("openngc.objects", 14_033),
])
def test_row_counts_match_tbl_stat(admin, table, rows):
    schema, name = table.split(".")
    assert admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == rows
    assert admin.execute("SELECT nrows FROM tbl_stat WHERE schema=%s AND tbl_name=%s",
                         (schema, name)).fetchone()[0] == rows


def test_sirius_and_vega_in_hipparcos(admin):
    rows = dict((r[0], r[1:]) for r in admin.execute(
        "SELECT hip, ra, dec, plx, hpmag, b_v FROM hipparcos.main WHERE hip IN (32349, 91262)"))
    ra, dec, plx, hp, bv = rows[32349]
    assert (round(ra, 5), round(dec, 5), plx) == (101.28854, -16.71314, 379.21)
    assert hp == pytest.approx(-1.0876, abs=1e-4) and bv == pytest.approx(0.009, abs=1e-4)
    ra, dec, plx, hp, bv = rows[91262]
    assert (round(ra, 5), round(dec, 5), plx) == (279.23411, 38.78299, 130.23)
    # and found by position, through the q3c index
    near = admin.execute("SELECT hip FROM hipparcos.main WHERE q3c_radial_query(ra, dec, 279.2341, 38.7830, 0.01)").fetchall()
    assert near == [(91262,)]


def test_bright_gaia_star_has_g_bp_rp(admin):
    # Barnard's star: the package's floats are G, BP, RP (its README says mag, pmra, pmdec).
    g, bp, rp, color = admin.execute(
        "SELECT phot_g_mean_mag, phot_bp_mean_mag, phot_rp_mean_mag, bp_rp FROM gaia_dr3.gaia_source_bright"
        " WHERE source_id = 4472832130942575872").fetchone()
    assert (round(g, 2), round(bp, 2), round(rp, 2)) == (8.19, 9.79, 6.96)
    assert color == pytest.approx(bp - rp, abs=1e-5)
    # Sirius is a Hipparcos substitute (source_id = -HIP), propagated to J2016
    sub = admin.execute("SELECT ra, dec, hip_substitute, phot_bp_mean_mag FROM gaia_dr3.gaia_source_bright"
                        " WHERE source_id = -32349").fetchone()
    assert sub[2] is True and sub[3] is None
    assert sub[0] == pytest.approx(101.2846, abs=1e-3) and sub[1] == pytest.approx(-16.7216, abs=1e-3)


def test_m31_in_openngc_in_degrees(admin):
    ra, dec, typ, hubble, common, messier = admin.execute(
        "SELECT ra, dec, type, hubble, commonnames, messier FROM openngc.objects WHERE name = 'NGC0224'").fetchone()
    assert ra == pytest.approx(10.6848, abs=1e-3) and dec == pytest.approx(41.2691, abs=1e-3)
    assert (typ, hubble, common, messier) == ("G", "Sb", "Andromeda Galaxy", "031")
    galaxies = admin.execute("SELECT count(*) FROM openngc.objects WHERE type = 'G'").fetchone()[0]
    assert galaxies == 10_521


@pytest.mark.parametrize("table", ["hipparcos.main", "gaia_dr3.gaia_source_bright", "openngc.objects", "smash_sim.object"])
def test_q3c_and_pgsphere_cones_return_identical_rows(admin, table):
    assert _has(admin, table), f"{table} is not built"
    rng = np.random.default_rng(7)
    key = {"hipparcos.main": "hip", "gaia_dr3.gaia_source_bright": "source_id",
           "openngc.objects": "name", "smash_sim.object": "id"}[table]
    if table == "smash_sim.object":
        centres = [(HYDRA_II[0] + dx, HYDRA_II[1] + dy) for dx, dy in rng.uniform(-0.5, 0.5, (5, 2))]
        radii = [0.02, 0.1]
    else:
        centres = [(rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))) for _ in range(10)]
        radii = [1.0, 5.0]
    total = 0
    for ra, dec in centres:
        for r in radii:
            q3c = admin.execute(f"SELECT {key} FROM {table} WHERE q3c_radial_query(ra, dec, %s, %s, %s) ORDER BY 1",
                                (ra, dec, r)).fetchall()
            sph = admin.execute(f"SELECT {key} FROM {table} WHERE spoint(radians(ra), radians(dec)) <@"
                                " scircle(spoint(radians(%s), radians(%s)), radians(%s)) ORDER BY 1",
                                (ra, dec, r)).fetchall()
            assert q3c == sph
            total += len(q3c)
    assert total > 0


def test_spatial_indexes_are_used_and_table_clustered(admin):
    plan = "\n".join(r[0] for r in admin.execute(
        "EXPLAIN SELECT * FROM gaia_dr3.gaia_source_bright WHERE q3c_radial_query(ra, dec, 10, 20, 0.1)"))
    assert "gaia_source_bright_q3c_idx" in plan
    plan = "\n".join(r[0] for r in admin.execute(
        "EXPLAIN SELECT * FROM gaia_dr3.gaia_source_bright WHERE spoint(radians(ra), radians(dec)) <@"
        " scircle(spoint(radians(10), radians(20)), radians(0.1))"))
    assert "gaia_source_bright_spoint_idx" in plan
    knn = "\n".join(r[0] for r in admin.execute(
        "EXPLAIN SELECT source_id FROM gaia_dr3.gaia_source_bright"
        " ORDER BY spoint(radians(ra), radians(dec)) <-> spoint(radians(10), radians(20)) LIMIT 5"))
    assert "Index Scan using gaia_source_bright_spoint_idx" in knn
    clustered = admin.execute("SELECT indisclustered FROM pg_index WHERE indexrelid ="
                              " 'gaia_dr3.gaia_source_bright_q3c_idx'::regclass").fetchone()[0]
    assert clustered
    # the heap really is in q3c pixel order: walking it by ctid, the pixel never decreases
    descents = admin.execute(
        "SELECT count(*) FILTER (WHERE ipix < prev) FROM (SELECT ipix, lag(ipix) OVER (ORDER BY ctid) prev"
        " FROM (SELECT ctid, q3c_ang2ipix(ra, dec) ipix FROM gaia_dr3.gaia_source_bright) a) b").fetchone()[0]
    assert descents == 0


def test_catalogs_are_read_only_for_the_public_role(admin):
    assert admin.execute("SELECT has_table_privilege('starbox_public', 'hipparcos.main', 'SELECT')").fetchone()[0]
    for priv in ("INSERT", "UPDATE", "DELETE", "TRUNCATE"):
        assert not admin.execute("SELECT has_table_privilege('starbox_public', 'hipparcos.main', %s)",
                                 (priv,)).fetchone()[0]
    owner = admin.execute("SELECT tableowner FROM pg_tables WHERE schemaname='hipparcos'").fetchone()[0]
    assert owner == "starbox_owner"


def test_tap_schema_describes_catalogs(admin):
    rows = admin.execute("SELECT column_name, unit, ucd, datatype, indexed, principal FROM tap_schema.columns"
                         " WHERE table_name = 'hipparcos.main' ORDER BY column_index").fetchall()
    by = {r[0]: r[1:] for r in rows}
    assert by["plx"][:3] == ("mas", "pos.parallax.trig", "double")
    assert by["ra"] == ("deg", "pos.eq.ra;meta.main", "double", 1, 1)
    assert by["hip"][2] == "int"
    desc = admin.execute("SELECT description FROM tap_schema.tables WHERE table_name='gaia_dr3.gaia_source_bright'").fetchone()[0]
    assert "CC BY-SA 3.0 IGO" in desc
    schemas = {r[0] for r in admin.execute("SELECT schema_name FROM tap_schema.schemas")}
    assert {"tap_schema", "hipparcos", "gaia_dr3", "openngc"} <= schemas


def test_licences_ship_for_every_catalog(starbox):
    from starbox.catalogs.manifest import catalog_manifests

    for m in catalog_manifests(starbox.db_dir):
        assert m.license, f"{m.table} names no licence file"
        assert (starbox.db_dir / "LICENSES" / m.license).is_file(), m.license


def test_hydra_ii_query_and_overdensity(admin):
    assert _has(admin, "smash_sim.object"), "smash_sim.object is not built"
    n = admin.execute(HYDRA_QUERY).fetchone()[0]
    assert 80_000 <= n <= 130_000
    total = admin.execute("SELECT nrows FROM tbl_stat WHERE schema='smash_sim' AND tbl_name='object'").fetchone()[0]
    assert 1_500_000 <= total <= 2_100_000  # as tests/test_smash_sim.py
    # blue point sources within 3' of Hydra II against the density 20'-40' away
    sel = HYDRA_QUERY.replace("count(*)", "count(*) FILTER (WHERE q3c_radial_query(ra, dec, %(ra)s, %(dec)s, 0.05)),"
                              " count(*) FILTER (WHERE NOT q3c_radial_query(ra, dec, %(ra)s, %(dec)s, 1/3.)"
                              " AND q3c_radial_query(ra, dec, %(ra)s, %(dec)s, 2/3.))")
    inner, ring = admin.execute(sel, {"ra": HYDRA_II[0], "dec": HYDRA_II[1]}).fetchone()
    area_inner, area_ring = np.pi * 0.05**2, np.pi * ((2 / 3) ** 2 - (1 / 3) ** 2)
    expected = ring / area_ring * area_inner
    assert (inner - expected) / np.sqrt(expected) > 5  # Hydra II stands out at more than 5 sigma
    described = admin.execute("SELECT bool_and(description ILIKE '%%simulat%%') FROM tap_schema.columns"
                              " WHERE table_name LIKE 'smash_sim.%%'").fetchone()[0]
    assert described
