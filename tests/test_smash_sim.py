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
from astropy.timeseries import LombScargle
from scipy import ndimage

from starbox.catalogs import smash
from starbox.settings import PROJECT_ROOT

pytestmark = pytest.mark.unit

HYA2_RA, HYA2_DEC = 185.4286, -31.9728
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
    assert 1_000_000 <= len(objects) <= 1_350_000
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
    well_measured = objects[objects.gmag < 24]
    assert (well_measured.ndetg > 3).mean() > 0.9 and (well_measured.ndetr > 3).mean() > 0.9


def _dwarf_filter(ra, dec, fwhm_small=2.0, fwhm_big=20.0):
    """Data Lab's dwarf_filter: 1' pixels, Gaussian kernels of FWHM 2' and 20', difference.

    As in the notebook, the RA axis gets as many bins as the field is wide in arcmin of angle
    (so ra binned this way is ra*cos(dec) binned by 1'), kernels have sigma = FWHM/2.35 pixels
    and astropy's convolve fills outside the map with zeros (mode='constant' here).
    """
    ymean = (dec.min() + dec.max()) / 2.0
    nx = int(np.rint((ra.max() - ra.min()) * np.cos(np.radians(ymean)) * 60.0))
    ny = int(np.rint((dec.max() - dec.min()) * 60.0))
    counts, xedges, yedges = np.histogram2d(ra, dec, (nx, ny))
    small = ndimage.gaussian_filter(counts, fwhm_small / 2.35, mode="constant")
    big = ndimage.gaussian_filter(counts, fwhm_big / 2.35, mode="constant")
    return small - big, 0.5 * (xedges[1:] + xedges[:-1]), 0.5 * (yedges[1:] + yedges[:-1])


def test_hydra_ii_is_the_strongest_overdensity_of_the_field(objects):
    sel = notebook_query(objects)
    delta, xc, yc = _dwarf_filter(sel.ra.to_numpy(), sel.dec.to_numpy())
    i, j = np.unravel_index(np.argmax(delta), delta.shape)  # over the whole map
    sep_arcmin = 60 * np.hypot((xc[i] - HYA2_RA) * np.cos(np.radians(HYA2_DEC)), yc[j] - HYA2_DEC)
    assert sep_arcmin < 2.0
    assert delta[i, j] > 4 * delta.std()


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
    assert len(gr) >= 30 and set(gr["filter"]) == {"g", "r"}
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
