"""Simulated DECam deep stacks of SMASH field 169, rendered from the smash_sim catalog.

Nothing here is a real image. Each band's stack is one virtual image on a TAN projection at
DECam's 0.263"/px around the field centre (about 33,000 pixels a side, never held whole): a
cutout renders only its own pixels. Stars are Moffat PSFs, galaxies the same profile widened by
their measured `sharp`; the sky noise follows the depth of the catalog (5 sigma at M5 where
every long exposure overlaps, shallower where fewer do, from the catalog's own observing log).
The noise of every pixel is drawn from a generator seeded by its 256-pixel tile of the virtual
image, so a pixel has the same value in every cutout that holds it, and the same request gives
the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from astropy.coordinates import angular_separation
from astropy.io import fits
from astropy.wcs import WCS

from starbox.catalogs import smash
from starbox.errors import NotFound, StarboxError

PIXSCALE = 0.263 / 3600  # deg
HALF_PIX = int(1.3 / PIXSCALE)  # the virtual image runs over +-1.3 deg around the centre
EDGE = HALF_PIX * PIXSCALE  # deg: half side of the virtual image
MAGZERO = 30.0  # stacks in counts with this zero point
SEEING = np.array([1.15, 1.05, 0.95, 0.90, 0.90])  # arcsec FWHM, u g r i z
MOFFAT_BETA = 3.0
EXPTIME_LONG = np.array([300.0, 267.0, 267.0, 333.0, 300.0])  # s, SMASH long exposures
TILE = 256
SEED = 169  # the catalog's seed: the depth follows its observing log
MAX_PIX = 2400  # a cutout side at most: 10.5 arcmin
BANDS = smash.BANDS


@dataclass(frozen=True)
class Product:
    band: str
    kind: str  # "image" or "wtmap"

    @property
    def sia_ref(self) -> str:
        suffix = "" if self.kind == "image" else "_wt"
        return f"smash_sim_169_stack_{self.band}{suffix}.fits"


PRODUCTS = [Product(b, k) for b in BANDS for k in ("image", "wtmap")]
BY_REF = {p.sia_ref: p for p in PRODUCTS}


def product(sia_ref: str) -> Product:
    try:
        return BY_REF[sia_ref]
    except KeyError:
        raise NotFound(
            f"Error: no image {sia_ref!r} in smash_sim (the collection's images are named like "
            f"{PRODUCTS[2].sia_ref}; an SIA search lists them)"
        ) from None


def full_wcs() -> WCS:
    """The virtual stack's WCS: pixel (1, 1) at the south-east corner, RA growing to the left."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [smash.FIELD_RA, smash.FIELD_DEC]
    w.wcs.crpix = [HALF_PIX + 1, HALF_PIX + 1]
    w.wcs.cd = [[-PIXSCALE, 0.0], [0.0, PIXSCALE]]
    w.wcs.radesys = "ICRS"
    w.wcs.equinox = 2000.0
    return w


def exptime(band: str) -> float:
    b = BANDS.index(band)
    return float(smash.N_LONG[b] * EXPTIME_LONG[b])


@lru_cache(maxsize=1)
def _coverage():
    """Long exposures per 0.5' pixel and band, from the catalog's observing log."""
    return smash._coverage_maps(smash.observing_log(SEED))[0]


def _sigma_full(b: int) -> float:
    """Noise per pixel of the full-depth stack: a point source at M5 is 5 sigma."""
    fwhm_pix = SEEING[b] / 0.263
    n_eff = 4 * np.pi * (fwhm_pix / 2.355) ** 2  # pixels of a Gaussian-like PSF
    flux5 = 10 ** (-0.4 * (smash.M5[b] - MAGZERO))
    return float(flux5 / (5 * np.sqrt(n_eff)))


def shape(width: float, height: float, dec: float) -> tuple[int, int]:
    """Pixels (x, y) of a cutout SIZE=width,height at this declination (see box)."""
    return max(1, int(round(width * np.cos(np.radians(dec)) / PIXSCALE))), max(1, int(round(height / PIXSCALE)))


def box(ra: float, dec: float, width: float, height: float) -> tuple[int, int, int, int]:
    """The pixel box (x0, x1, y0, y1; 0-based, end excluded) of a cutout on the virtual image.
    As in SIA 1.0, `width` is the extent in the RA coordinate: width * cos(dec) on the sky
    (Data Lab's notebooks divide by cos(dec) for a square cutout)."""
    sep = np.degrees(angular_separation(*np.radians([ra, dec, smash.FIELD_RA, smash.FIELD_DEC])))
    if sep > 2 * EDGE:  # far off the field (the projection would not even hold the point)
        raise StarboxError("Error: that position is outside the images of SMASH field 169 (simulated)")
    x, y = full_wcs().all_world2pix([[ra, dec]], 0)[0]
    nx, ny = shape(width, height, dec)
    if nx > MAX_PIX or ny > MAX_PIX:
        raise StarboxError(
            f"Error: a cutout is at most {MAX_PIX * PIXSCALE:.3f} deg a side ({MAX_PIX} pixels); "
            f"SIZE asks for {width:g} x {height:g} deg"
        )
    x0, y0 = int(np.floor(x - nx / 2 + 0.5)), int(np.floor(y - ny / 2 + 0.5))
    x0, y0 = max(x0, 0), max(y0, 0)
    x1, y1 = min(x0 + nx, 2 * HALF_PIX + 1), min(y0 + ny, 2 * HALF_PIX + 1)
    if x1 <= x0 or y1 <= y0:
        raise StarboxError("Error: that position is outside the images of SMASH field 169 (simulated)")
    return x0, x1, y0, y1


def _noise(b: int, x0: int, x1: int, y0: int, y1: int) -> np.ndarray:
    """Unit normal noise of the box, tile by tile, so that every cutout agrees pixel by pixel."""
    out = np.empty((y1 - y0, x1 - x0), np.float32)
    for ty in range(y0 // TILE, (y1 - 1) // TILE + 1):
        for tx in range(x0 // TILE, (x1 - 1) // TILE + 1):
            tile = np.random.default_rng([SEED, b, ty, tx]).standard_normal((TILE, TILE), np.float32)
            ya, yb = max(y0, ty * TILE), min(y1, (ty + 1) * TILE)
            xa, xb = max(x0, tx * TILE), min(x1, (tx + 1) * TILE)
            out[ya - y0 : yb - y0, xa - x0 : xb - x0] = tile[
                ya - ty * TILE : yb - ty * TILE, xa - tx * TILE : xb - tx * TILE
            ]
    return out


def _depth(b: int, wcs: WCS, shape: tuple[int, int]) -> np.ndarray:
    """Exposures covering each pixel relative to the full stack (0 off the field), 0.5' steps."""
    cover = _coverage()[b].astype(np.float32)
    full = float(smash.N_LONG[b])
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    ra, dec = wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    xi, eta = smash._to_plane(ra, dec)
    iy, ix = smash._pixel(xi, eta)
    inside = (np.abs(xi) < smash.HALF_SIZE) & (np.abs(eta) < smash.HALF_SIZE)
    return (np.where(inside, cover[iy, ix], 0.0) / full).reshape(shape).astype(np.float32)


def _stamp(image: np.ndarray, x: float, y: float, flux: float, fwhm_pix: float) -> None:
    """Add a Moffat profile of total flux `flux` centred at pixel (x, y)."""
    alpha = fwhm_pix / (2 * np.sqrt(2 ** (1 / MOFFAT_BETA) - 1))
    r = int(np.ceil(4 * fwhm_pix)) + 2
    xc, yc = int(round(x)), int(round(y))
    ya, yb = max(yc - r, 0), min(yc + r + 1, image.shape[0])
    xa, xb = max(xc - r, 0), min(xc + r + 1, image.shape[1])
    if ya >= yb or xa >= xb:
        return
    yy, xx = np.mgrid[ya:yb, xa:xb]
    prof = (1 + ((xx - x) ** 2 + (yy - y) ** 2) / alpha**2) ** (-MOFFAT_BETA)
    norm = (MOFFAT_BETA - 1) / (np.pi * alpha**2)  # the profile's integral over the plane is 1
    image[ya:yb, xa:xb] += (flux * norm) * prof


def _filled(objects: dict[str, np.ndarray], band: str) -> np.ndarray:
    """The band's magnitudes; where it was not measured (99.99, e.g. saturated), the nearest
    measured band's, so that a bright star is not missing from one colour of a composite."""
    mags = objects[f"{band}mag"].astype(float).copy()
    b = BANDS.index(band)
    for other in sorted(range(len(BANDS)), key=lambda k: abs(k - b))[1:]:
        fill = objects[f"{BANDS[other]}mag"]
        mags = np.where((mags > 50) & (fill < 50), fill, mags)
    return mags


def render(p: Product, objects: dict[str, np.ndarray], bbox: tuple[int, int, int, int]) -> fits.HDUList:
    """The cutout `bbox` of product `p` as a FITS file: pixels and WCS in the primary HDU."""
    b = BANDS.index(p.band)
    x0, x1, y0, y1 = bbox
    wcs = full_wcs()
    wcs.wcs.crpix = [HALF_PIX + 1 - x0, HALF_PIX + 1 - y0]
    shape = (y1 - y0, x1 - x0)
    depth = _depth(b, wcs, shape)
    sigma = _sigma_full(b) / np.sqrt(np.maximum(depth, 1e-6))
    if p.kind == "wtmap":
        data = np.where(depth > 0, 1.0 / sigma**2, 0.0).astype(np.float32)
    else:
        data = np.zeros(shape, np.float32)
        mags = _filled(objects, p.band)
        px, py = wcs.all_world2pix(objects["ra"], objects["dec"], 0)
        fwhm = SEEING[b] / 0.263
        width = np.hypot(fwhm, 2.0 * np.clip(objects["sharp"], 0, 3) / 0.263)  # galaxies are wider
        for x, y, m, w in zip(px, py, mags, width):
            if m < 50:  # 99.99: not measured in this band
                _stamp(data, x, y, 10 ** (-0.4 * (m - MAGZERO)), w)
        noise = _noise(b, x0, x1, y0, y1) * sigma
        data = np.where(depth > 0, data + noise, 0.0).astype(np.float32)
    header = wcs.to_header()
    header["OBJECT"] = ("SMASH field 169 (SIMULATED)", "not real data: rendered from smash_sim")
    header["INSTRUME"] = "DECam"
    header["FILTER"] = p.band
    header["PRODTYPE"] = p.kind
    header["PROCTYPE"] = "Stack"
    header["EXPTIME"] = (exptime(p.band), "s, the long exposures of the stack")
    header["MAGZERO"] = (MAGZERO, "mag of one count")
    header["SEEING"] = (float(SEEING[b]), "arcsec FWHM")
    header["BUNIT"] = "count" if p.kind == "image" else "1/count**2"
    header["SIMULATD"] = (True, "Starbox simulation, not a SMASH image")
    header["COMMENT"] = "Simulated by Starbox from the smash_sim catalog. Not real SMASH data."
    return fits.HDUList([fits.PrimaryHDU(data, header)])


def catalog_query(ra: float, dec: float, radius: float) -> tuple[str, dict]:
    """The SQL that gives the objects a cutout around (ra, dec) of this radius shows."""
    sql = (
        "SELECT ra, dec, sharp, " + ", ".join(f"{b}mag" for b in BANDS) + " FROM smash_sim.object"
        " WHERE q3c_radial_query(ra, dec, %(ra)s, %(dec)s, %(r)s)"
    )
    return sql, {"ra": ra, "dec": dec, "r": radius}
