"""Simulated DECam images of SMASH field 169: SIA 1.0 through the real pyvo client, and the
cutout service read by astropy (WCS, pixels, the catalog lining up with the stars)."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pytest
from astropy.io import fits
from astropy.utils.data import download_file
from astropy.visualization import make_lupton_rgb
from astropy.wcs import WCS

pytestmark = pytest.mark.system

HYDRA_II = (185.4286, -31.9728)


@pytest.fixture(scope="module")
def images(service, starbox):
    from starbox import database

    with database.connect_admin(starbox) as conn:
        if not conn.execute("SELECT to_regclass('smash_sim.object')").fetchone()[0]:
            pytest.skip("smash_sim is not loaded (STARBOX_TEST_SAMPLE_CATALOGS)")
    return service.url


def _deepest(table, band):
    # Data Lab's notebook, as written: the deepest stacked image of the band
    sel = (table["proctype"] == "Stack") & (table["prodtype"] == "image") & (table["obs_bandpass"] == band)
    rows = table[sel]
    return rows[np.argmax(rows["exptime"].data.data.astype("float"))]


def test_data_labs_notebook_code_finds_and_reads_the_stacks(images):
    from pyvo.dal import sia

    svc = sia.SIAService(f"{images}/sia/smash_dr1")
    ra, dec = HYDRA_II
    fov = 0.05
    table = svc.search((ra, dec), (fov / np.cos(dec * np.pi / 180), fov), verbosity=2).to_table()
    assert set(table["obs_bandpass"]) == set("ugriz")
    assert {"access_url", "proctype", "prodtype", "exptime", "s_ra", "s_dec", "magzero"} <= set(table.colnames)
    assert all("SIMULATED" in t for t in table["obs_title"])
    stacks = []
    for band in "gri":
        row = _deepest(table, band)
        data, header = fits.getdata(download_file(row["access_url"], cache=False, timeout=120), header=True)
        assert header["FILTER"] == band and header["SIMULATD"] and "SIMULATED" in header["OBJECT"]
        assert data.shape == (round(fov / (0.263 / 3600)),) * 2
        stacks.append(data)
    rgb = make_lupton_rgb(stacks[2], stacks[1], stacks[0], stretch=30)  # as the notebook does
    assert rgb.shape == stacks[0].shape + (3,) and rgb.max() > 0
    # records, as pyvo reads them through the SIA 1.0 UCDs
    rec = next(iter(svc.search((ra, dec), 0.02)))
    assert rec.getdataurl().startswith(f"{images}/svc/cutout?")


def test_the_catalog_lines_up_with_the_stars(images, starbox):
    from starbox import database

    ra, dec = HYDRA_II
    url = f"{images}/svc/cutout?col=smash_sim&siaRef=smash_sim_169_stack_r.fits&extn=0&POS={ra},{dec}&SIZE=0.08,0.08"
    r = httpx.get(url, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"] == "image/fits"
    hdu = fits.open(io.BytesIO(r.content))[0]
    wcs = WCS(hdu.header)
    assert wcs.has_celestial and hdu.data.dtype.kind == "f"
    assert abs(wcs.proj_plane_pixel_scales()[0].to_value("arcsec") - 0.263) < 1e-6
    with database.connect_admin(starbox) as conn:
        stars = conn.execute(
            "SELECT ra, dec, rmag FROM smash_sim.object WHERE q3c_radial_query(ra, dec, %s, %s, 0.03)"
            " AND rmag BETWEEN 17.5 AND 20 AND abs(sharp) < 0.2 ORDER BY rmag LIMIT 10", (ra, dec)).fetchall()
    assert len(stars) >= 5
    for s_ra, s_dec, _ in stars:
        x, y = (int(round(v)) for v in wcs.all_world2pix([[s_ra, s_dec]], 0)[0])
        near = hdu.data[y - 2 : y + 3, x - 2 : x + 3]
        assert near.max() == hdu.data[y - 6 : y + 7, x - 6 : x + 7].max()  # the peak is at the catalog place
        assert near.max() > 20 * np.std(hdu.data[:40, :40])
    # the same URL, the same bytes (download_file caches by URL); a preview is a PNG
    assert httpx.get(url, timeout=120).content == r.content
    png = httpx.get(url + "&preview=true", timeout=120)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    # a weight map of the same place: positive where the field is
    wt = fits.getdata(io.BytesIO(httpx.get(url.replace("_r.fits", "_r_wt.fits"), timeout=120).content))
    assert wt.shape == hdu.data.shape and (wt > 0).all()


@pytest.mark.parametrize("query,status,words", [
    ("sia/smash_dr1?POS=185.4&SIZE=0.1", 400, "POS=185.4"),
    ("sia/smash_dr1", 400, "give POS"),
    ("sia/nsa?POS=185.4,-32&SIZE=0.1", 404, "no image collection"),
    ("sia/smash_dr1?POS=185.4,-32&SIZE=nan", 400, "SIZE"),
    ("svc/cutout?col=smash_sim&siaRef=x.fits&POS=185.4,-32&SIZE=0.01", 404, "no image"),
    ("svc/cutout?col=smash_sim&siaRef=smash_sim_169_stack_g.fits", 400, "give POS"),
    ("svc/cutout?col=smash_sim&siaRef=smash_sim_169_stack_g.fits&POS=185.4,-32&SIZE=1", 400, "at most"),
    ("svc/cutout?col=smash_sim&siaRef=smash_sim_169_stack_g.fits&POS=10,10&SIZE=0.01", 400, "outside"),
])
def test_bad_requests_are_refused_with_the_reason(images, query, status, words):
    r = httpx.get(f"{images}/{query}", timeout=60)
    assert r.status_code == status and words in r.text, r.text


def test_outside_the_field_an_sia_search_is_empty(images):
    from pyvo.dal import sia

    assert len(sia.SIAService(f"{images}/sia/smash_sim").search((10.0, 10.0), 0.1)) == 0
