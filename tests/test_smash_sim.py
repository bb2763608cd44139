"""The simulated SMASH field 169 (smash_sim): counts, schema, Hydra II, the RR Lyrae light curve.

The catalog is built once per module (about 10 s); everything is checked with pandas and numpy,
no database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from astropy.convolution import Gaussian2DKernel, convolve
from astropy.stats import sigma_clipped_stats
from astropy.timeseries import LombScargle
from photutils.detection import find_peaks
from starbox.catalogs import smash
from starbox.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit

MANIFESTS = PROJECT_ROOT / "db" / "catalogs"
PG_TO_ARROW = {"double precision": "double", "real": "float", "integer": "int32",
               "smallint": "int16", "bigint": "int64", "text": "string"}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return smash.build(tmp_path_factory.mktemp("smash_sim"))


@pytest.fixture(scope="module")
def objects(built):
    return pd.read_parquet(built["smash_sim.object"])


@pytest.fixture(scope="module")
def source(built):
    return pd.read_parquet(built["smash_sim.source"])


def notebook_query_all(df):
    # Data Lab's notebook, without its point-source and colour cuts.
    return df[(df.fieldid == "169") & (df.depthflag > 1) & (df.ndetr > 3) & (df.ndetg > 3)
              & df.gmag.between(9, 25)]


def notebook_query(df):
    # fieldid='169' AND depthflag>1 AND ndetr>3 AND ndetg>3 AND abs(sharp)<0.5
    # AND gmag BETWEEN 9 AND 25 AND (gmag-rmag) BETWEEN -0.4 AND 0.4
    sel = notebook_query_all(df)
    return sel[(sel.sharp.abs() < 0.5) & (sel.gmag - sel.rmag).between(-0.4, 0.4)]


def test_row_counts_match_the_real_field(objects):
    # The whole table (the real field's total is not in Data Lab's notebooks): every detection,
    # out to where one exposure alone covers the sky.
    assert 1_500_000 <= len(objects) <= 2_100_000
    # The notebook found 1,171,225 and 104,974 on the real field 169.
    assert 1_100_000 <= len(notebook_query_all(objects)) <= 1_250_000
    assert 80_000 <= len(notebook_query(objects)) <= 130_000


@pytest.mark.parametrize("table", ["smash_sim.object", "smash_sim.source"])
def test_parquet_columns_follow_the_manifest(built, table):
    manifest = yaml.safe_load((MANIFESTS / f"{table}.yaml").read_text())
    schema = pq.read_schema(built[table])
    assert schema.names == [c["name"] for c in manifest["columns"]]
    for col in manifest["columns"]:
        assert str(schema.field(col["name"]).type) == PG_TO_ARROW[col["type"]], col["name"]
    # Nobody may take it for real data.
    assert manifest["description"].startswith("Simulated:")
    assert all(c["description"].startswith("Simulated:") for c in manifest["columns"])


def test_columns_look_like_smash(objects):
    assert objects.id.str.startswith("169.").all() and objects.id.is_unique
    assert (objects.fieldid == "169").all()
    for band in "ugriz":
        missing = objects[f"{band}mag"] > 99
        assert (objects.loc[missing, f"{band}err"] > 9.98).all()
        assert (objects.loc[missing, f"ndet{band}"] == 0).all()
        assert (objects.loc[~missing, f"ndet{band}"] > 0).all()
    assert set(objects.depthflag.unique()) <= {1, 2, 3}
    assert (objects.depthflag > 1).mean() > 0.99
    assert objects.random_id.between(0, 100).all()
    assert objects.ebv.between(0.04, 0.08).all()
    # in the deep part of the field (within 0.9 deg of its centre, where every group of
    # dithers overlaps) nearly everything brighter than g = 24 has more than three detections
    cos_dec = np.cos(np.radians(smash.FIELD_DEC))
    deep = np.hypot((objects.ra - smash.FIELD_RA) * cos_dec, objects.dec - smash.FIELD_DEC) < 0.9
    well_measured = objects[deep & (objects.gmag < 24)]
    assert (well_measured.ndetg > 3).mean() > 0.9 and (well_measured.ndetr > 3).mean() > 0.9


def _datalab_dwarf_filter(ra, dec, fwhm_small=2.0, fwhm_big=20.0):
    """Data Lab's dwarf_filter as its notebook has it: 1' pixels (the RA axis as many as the
    field is wide in arcmin of angle), rot90 for imshow, astropy Gaussian kernels of
    sigma = FWHM/2.35 pixels, convolve's zero fill; statistics of the difference, and the
    difference clipped at its mean."""
    ymean = (dec.min() + dec.max()) / 2.0
    nx = int(np.rint((ra.max() - ra.min()) * 60.0 * np.cos(np.radians(ymean))))
    ny = int(np.rint((dec.max() - dec.min()) * 60.0))
    counts, xedges, yedges = np.histogram2d(ra, dec, (nx, ny))
    extent = [xedges[0], xedges[-1], yedges[0], yedges[-1]]
    raw = np.rot90(counts).copy()
    small = convolve(raw, Gaussian2DKernel(fwhm_small / 2.35, factor=1))
    big = convolve(raw, Gaussian2DKernel(fwhm_big / 2.35, factor=1))
    delta = small - big
    stats = {"mean": delta.mean(), "sigma": delta.std(), "sigmaRaw": raw.std()}
    clipped = delta.copy()
    clipped[delta < stats["mean"]] = stats["mean"]
    return clipped, extent, stats


# Data Lab's published output on the real SMASH DR1 field 169
REAL_STATS = {"mean": 0.0890555, "sigma": 1.79455, "sigmaRaw": 5.33591}
REAL_PEAKS = [(11.3115, 185.4106, -31.9760), (11.5126, 184.3935, -32.1595)]  # Hydra II, a galaxy group


def test_datalab_dwarf_filter_finds_what_it_finds_on_the_real_field(objects):
    sel = notebook_query(objects)
    clipped, extent, stats = _datalab_dwarf_filter(sel.ra.to_numpy(), sel.dec.to_numpy())
    for key, real in REAL_STATS.items():
        assert stats[key] == pytest.approx(real, rel=0.10), key
    # the notebook's peak finding, and its pixel -> sky conversion
    _, median, _ = sigma_clipped_stats(clipped, sigma=3.0, maxiters=5)
    peaks = find_peaks(clipped, median + 10, box_size=4)
    assert peaks is not None and len(peaks) == 2
    a, b = extent[:2]
    xvec = np.arange(a, b, (b - a) / clipped.shape[1])
    a, b = extent[2:]
    yvec = np.arange(a, b, (b - a) / clipped.shape[0])
    found = [(p["peak_value"], xvec[p["x_peak"]], yvec[-p["y_peak"] - 1]) for p in peaks]
    for value, ra, dec in REAL_PEAKS:
        near = [f for f in found if 60 * np.hypot((f[1] - ra) * np.cos(np.radians(dec)), f[2] - dec) < 2.5]
        assert len(near) == 1, (ra, dec, found)
        assert near[0][0] == pytest.approx(value, rel=0.10)


def test_rr_lyrae_light_curve(objects, source):
    assert source.id.nunique() == 1
    star_id = source.id.iloc[0]
    assert star_id == smash.RRL_OBJECT_ID  # the id the docs and the manifest give
    manifest = yaml.safe_load((MANIFESTS / "smash_sim.source.yaml").read_text())
    assert star_id in manifest["description"]
    star = objects[objects.id == star_id].iloc[0]
    assert star_id == "169.429960"  # the real star's SMASH id, as Data Lab's notebook asks for it
    cos_dec = np.cos(np.radians(star.dec))
    assert 3600 * np.hypot((star.ra - 185.4311) * cos_dec, star.dec + 31.9953) < 1.0  # and its place
    gr = source[source["filter"].isin(["g", "r"])]
    assert len(gr) >= 20 and set(gr["filter"]) == {"g", "r"}  # of 30: chip gaps take some
    assert set(source["filter"]) <= set("ugriz")
    assert (source.mjd.max() - source.mjd.min()) > 365  # a few years
    assert star.ndetg == (source["filter"] == "g").sum()

    # Period: g and r together, each band scaled to zero mean and unit spread.
    mag = gr.cmag.to_numpy(float)
    err = gr.cerr.to_numpy(float)
    for band in "gr":
        m = (gr["filter"] == band).to_numpy()
        mean, spread = mag[m].mean(), mag[m].std()
        mag[m], err[m] = (mag[m] - mean) / spread, err[m] / spread
    freq, power = LombScargle(gr.mjd, mag, err, nterms=2).autopower(
        minimum_frequency=0.2, maximum_frequency=5.0, samples_per_peak=10)  # P = 0.2..5 d
    period = 1.0 / freq[np.argmax(power)]
    assert period == pytest.approx(smash.RRL_PERIOD, rel=0.01)

    # Distance: <g> - A_g = (m-M)_0 + M_g = 20.64 + 0.60; amplitude near 0.9 in g.
    g = source.loc[source["filter"] == "g", "cmag"]
    assert g.mean() - 3.237 * star.ebv == pytest.approx(20.64 + 0.60, abs=0.15)
    assert 0.6 < g.max() - g.min() < 1.2


def test_same_seed_same_data(tmp_path):
    a = smash.build(tmp_path / "a", seed=7, scale=0.05)
    b = smash.build(tmp_path / "b", seed=7, scale=0.05)
    for table in a:
        pd.testing.assert_frame_equal(pd.read_parquet(a[table]), pd.read_parquet(b[table]))
    assert not list((tmp_path / "a").glob(".*tmp"))  # no temporary files left behind
