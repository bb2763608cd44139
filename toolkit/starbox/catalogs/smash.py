"""A seeded simulation of SMASH DR1 field 169, around the Hydra II dwarf galaxy.

Nothing here is real SMASH data. The tables ``smash_sim.object`` and ``smash_sim.source``
copy the column names of SMASH DR1 (Nidever et al. 2017) so that Data Lab's notebook
"Detecting the Hydra II dwarf galaxy in SMASH DR1" runs with one word changed
(``smash_dr1`` -> ``smash_sim``): its query returns about 1.17 million rows without, and
about 105,000 with, its point-source and blue-colour cuts (1,171,225 and 104,974 on the real
field), and its difference-of-Gaussians filter (kernels of FWHM 2' and 20') gives the
statistics Data Lab's notebook printed for the real field, each within 10% (mean 0.0891, sigma
1.795, sigmaRaw 5.336; tests/test_smash_sim.py), and two peaks above its threshold of the
median + 10, where the real ones are: Hydra II (11.31) and a distant galaxy cluster (11.51).
Those statistics come mostly from the footprint's shape and depth steps; the shipped seed
matches them, and peak heights move by ~15% from seed to seed.

What goes into the field (DECam's 62 CCDs, four groups of dithers; the notebook's map is
2.8 x 2.3 deg, as the real one):

* Hydra II (Martin et al. 2015): a Plummer sphere (r_h = 1.7') at RA 185.4286, Dec -31.9728,
  (m-M)_0 = 20.64. Its stars are drawn by the Kroupa ``int_IMF`` column from the PARSEC
  isochrone shipped in ``uwastro465isos`` ([M/H] = -2.0, log age 10.10): M_V ~ -5.1 and ~330
  stars brighter than g = 24.8 (Martin et al.: M_V = -4.8 +- 0.3). Added by hand: blue
  horizontal-branch stars, blue stragglers and three RR Lyrae stars.
* Milky Way foreground at (l, b) = (295.6, 30.5): thin disk, thick disk and halo, each one
  PARSEC isochrone spread along the line of sight.
* Background galaxies, whose faint, compact, blue ones pass the notebook's cuts, clustered (a
  lognormal density field). Their counts are cut off near g = 25, and the catalogue is
  g-selected, to keep the table near the real field's count instead of listing everything r or
  i would add. A compact group of faint blue galaxies sits where the real field's second peak
  is (RA 184.3935, Dec -32.1595): Data Lab's deep images show a galaxy cluster there.
* An observing log of 61 DECam exposures (2013-2016) that sets coverage and depth, the
  ``ndet*`` and ``depthflag`` columns, and the epochs of the one light curve.

The RR Lyrae member with a light curve (RRab, P = 0.645 d, A_g = 0.9 mag) is where the real
one is, at RA 185.4311, Dec -31.9953 (1.35' south of the centre of Hydra II; Vivas et al. 2016),
and has its real SMASH identifier ``169.429960`` (RRL_OBJECT_ID) in every build, as Data Lab's
RR Lyrae notebook asks for it: the sequence number 429960 is kept for it, and the other objects'
numbers skip it. The exposures that cover it (of 61; some put it in a gap between CCDs) are
the rows of ``smash_sim.source``. Its
phase-averaged g is 20.64 + 0.60 + A_g = 21.44, with A_g = 3.237 * ebv: SMASH magnitudes
are not dereddened.

The same seed and scale give the same data values (on the same numpy version).
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy import ndimage

# ---------------------------------------------------------------------------------------------
# Facts and model constants

FIELD_ID = "169"
FIELD_RA, FIELD_DEC = 185.2, -31.68  # field centre: the middle of the real field's dwarf-filter map
HYA2_RA, HYA2_DEC = 185.4286, -31.9728
HYA2_DM = 20.64  # (m-M)_0, 134 kpc (Martin et al. 2015)
HYA2_RH_ARCMIN = 1.7  # half-light radius = Plummer scale radius in projection
HYA2_ELL, HYA2_PA = 0.01, 16.0
HYA2_MASS_FORMED = 3.3e4  # Msun formed: M_V ~ -5.1, ~330 stars with g < 24.8

BANDS = "ugriz"
M5 = np.array([23.9, 24.8, 24.5, 24.2, 23.5])  # SMASH 5-sigma depths of the full stack
EXT = np.array([3.995, 3.237, 2.176, 1.595, 1.217])  # A_band / E(B-V), DECam (SF11)
N_LONG = np.array([6, 13, 13, 10, 9])  # long exposures per band in the observing log
N_SHORT = 2  # short exposures per band
SHORT_WEIGHT = 0.2  # exposure time of a short one relative to a long one
SAT_LONG = np.array([15.5, 17.0, 17.0, 16.8, 16.2])  # saturation of long exposures
SAT_SHORT = SAT_LONG - 1.75
ERR_GAMMA, ERR_FLOOR = 0.04, 0.007
# ALLFRAME-style forced photometry measures a long frame down to this far below its 5 sigma
# depth; a short frame, with few sources to anchor it, less far (mag)
FORCED_REACH_LONG, FORCED_REACH_SHORT = 2.0, 1.0

# DECam's focal plane: 62 CCDs of 2048 x 4096 pixels (0.263"), their long side east-west, in
# twelve rows; the gaps between them are ~200 pixels east-west and ~150 north-south.
DECAM_ROWS = (3, 4, 5, 6, 6, 7, 7, 6, 6, 5, 4, 3)
CCD_LONG, CCD_SHORT = 0.2992, 0.1496  # deg
GAP_EW, GAP_NS = 0.0146, 0.0112  # deg
# The long exposures of a band come in N_GROUPS groups, pointed DITHER_GROUP from the field
# centre, each exposure within DITHER_LONG of its group's pointing.
N_GROUPS, DITHER_GROUP, DITHER_LONG = 4, 0.44, 0.08  # deg
DITHER_SHORT = 0.15  # deg, radius of the short exposures' dithers
HALF_SIZE = 1.5  # deg, half side of the box that holds every footprint
N_STRIPS = 10  # declination strips = Parquet row groups, written one at a time
COVER_PIX = 0.5 / 60  # deg, pixel of the coverage maps

GALAXY_DENSITY = 395_600.0  # per deg^2, all simulated galaxies
GAL_G_CUTOFF = 24.85  # true g where the simulated galaxy counts fall to half
GAL_SHARP_BRIGHT, GAL_SHARP_FAINT = 1.3, 0.50  # median sharp at g <= 19 and g >= 25
# Galaxies cluster: their density is a lognormal field of this rms (in ln), smoothed on
# CLUSTER_SCALE and drawn on cells of CLUSTER_PIX; the dwarf filter sees its small-scale part.
CLUSTER_RMS, CLUSTER_SCALE, CLUSTER_PIX = 0.235, 0.8 / 60, 0.25 / 60
# A distant group of galaxies where the real field's second peak is: Data Lab's deep images
# show a galaxy cluster there. Its faint, compact, blue members pass the notebook's cuts.
GROUP2_RA, GROUP2_DEC, GROUP2_N, GROUP2_RADIUS = 184.3935, -32.1595, 200, 1.5 / 60

RRL_PERIOD, RRL_AMP_G = 0.645, 0.9
RRL_AMP_RATIO = np.array([0.93, 1.0, 0.72, 0.58, 0.54])  # A_band / A_g of RRab stars
RRL_MG = 0.6  # phase-averaged M_g of the light-curve star; the other two are fainter
RRL_EPOCH = 56345.2  # MJD of a maximum of light

RRL_SEQ = 429960  # SMASH DR1's sequence number of the real star: "169.429960"
RRL_OBJECT_ID = f"{FIELD_ID}.{RRL_SEQ}"  # in the docs and manifest, checked by tests
RRL_RA, RRL_DEC = 185.4311, -31.9953  # the real star's position

_KIND_GALAXY, _KIND_STAR, _KIND_MEMBER, _KIND_RRL = 0, 1, 2, 3


# ---------------------------------------------------------------------------------------------
# Geometry: a gnomonic plane around the field centre, in degrees


def _to_sky(xi, eta, ra0=FIELD_RA, dec0=FIELD_DEC):
    x, y = np.radians(xi), np.radians(eta)
    d0, a0 = np.radians(dec0), np.radians(ra0)
    denom = np.cos(d0) - y * np.sin(d0)
    ra = a0 + np.arctan2(x, denom)
    dec = np.arctan2(np.sin(d0) + y * np.cos(d0), np.hypot(x, denom))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def _to_plane(ra, dec, ra0=FIELD_RA, dec0=FIELD_DEC):
    a, d = np.radians(ra) - np.radians(ra0), np.radians(dec)
    d0 = np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a)) / cosc
    return np.degrees(xi), np.degrees(eta)


def _in_footprint(x, y, cx=0.0, cy=0.0):
    """Whether (x, y) falls on a CCD of one exposure pointed at (cx, cy): DECam's rows of
    chips, centred on the pointing, with the gaps between them."""
    x, y = np.asarray(x) - cx + GAP_EW / 2, np.asarray(y) - cy + GAP_NS / 2  # gaps centred
    pitch_y = CCD_SHORT + GAP_NS
    row = np.floor(y / pitch_y + len(DECAM_ROWS) / 2).astype(np.int64)
    ok = (row >= 0) & (row < len(DECAM_ROWS))
    n = np.asarray(DECAM_ROWS)[np.clip(row, 0, len(DECAM_ROWS) - 1)]
    in_y = (y / pitch_y + len(DECAM_ROWS) / 2 - row) * pitch_y < CCD_SHORT
    pitch_x = CCD_LONG + GAP_EW
    u = x / pitch_x + n / 2  # chip k of the row covers u in [k, k + CCD_LONG / pitch_x)
    col = np.floor(u)
    in_x = (col >= 0) & (col < n) & ((u - col) * pitch_x < CCD_LONG)
    return ok & in_y & in_x


def _ebv(xi, eta):
    # A smooth SFD-like reddening around 0.06, no structure on dwarf-galaxy scales.
    return 0.060 + 0.004 * xi - 0.003 * eta + 0.002 * np.sin(2.1 * xi + 0.7) * np.cos(1.7 * eta)


def _plummer(rng, n, r_h_deg, ell=0.0, pa_deg=0.0):
    # Projected Plummer: M(<R) = R^2 / (R^2 + a^2), so R = a sqrt(u / (1 - u)).
    u = rng.uniform(0.0, 0.995, n)
    r = r_h_deg * np.sqrt(u / (1.0 - u))
    phi = rng.uniform(0.0, 2 * np.pi, n)
    x_maj, y_min = r * np.cos(phi), r * np.sin(phi) * (1.0 - ell)
    pa = np.radians(pa_deg)  # east of north: major axis along (sin pa, cos pa)
    return x_maj * np.sin(pa) + y_min * np.cos(pa), x_maj * np.cos(pa) - y_min * np.sin(pa)


# ---------------------------------------------------------------------------------------------
# The observing log: dithered exposures that fix coverage, depth and the light-curve epochs


def _observing_log(rng):
    """61 exposures over four seasons: band, long/short, MJD, dither offset, exposure number.

    Each band's long exposures take turns among N_GROUPS pointings on a circle of radius
    DITHER_GROUP around the field centre, and within a group each has its own small offset (a
    sunflower pattern within DITHER_LONG), so the gaps between the CCDs fill in. The depth then
    falls in steps where fewer groups overlap: the dwarf filter's edge structure, and the
    real field's map size, come from these steps. The two short exposures sit on two more.
    """
    # Feb-May of 2013..2016, when Hydra II is up at night; 15 nights a season, so that the
    # RR Lyrae star's period can be found without day aliases.
    season_starts = [56340.0, 56700.0, 57070.0, 57430.0]
    nights = np.sort(np.concatenate([s + rng.choice(110, 15, replace=False) for s in season_starts]))
    band, short, dx, dy = [], [], [], []
    golden = np.pi * (3.0 - np.sqrt(5.0))
    for b in range(5):
        turn = np.radians(40.0 * b)  # each band's pattern turned
        for k in range(N_SHORT):
            ang = turn + np.pi / 3 + np.pi * k
            band.append(b)
            short.append(True)
            dx.append(DITHER_SHORT * np.cos(ang))
            dy.append(DITHER_SHORT * np.sin(ang))
        for k in range(N_LONG[b]):
            group = turn + 2 * np.pi * (k % N_GROUPS) / N_GROUPS
            rad = np.sqrt((k + 0.5) / N_LONG[b])
            band.append(b)
            short.append(False)
            dx.append(DITHER_GROUP * np.cos(group) + DITHER_LONG * rad * np.cos(turn + golden * k))
            dy.append(DITHER_GROUP * np.sin(group) + DITHER_LONG * rad * np.sin(turn + golden * k))
    n = len(band)
    mjd = rng.choice(nights, n) + rng.uniform(0.0, 0.40, n)  # 0h..9.6h UT, the Chilean night
    order = np.argsort(mjd)
    mjd = mjd[order]
    return {
        "band": np.array(band)[order],
        "short": np.array(short)[order],
        "mjd": mjd,
        "dx": np.array(dx)[order],
        "dy": np.array(dy)[order],
        "expnum": (183_000 + (mjd - 56300.0) * 310.0).astype(np.int64),  # DECam-like, rising
    }


def observing_log(seed: int = 169):
    """The build's observing log for this seed (the images' depth follows it too)."""
    return _observing_log(np.random.default_rng([seed, 1]))


def _coverage_maps(log):
    """Per band, how many long and short exposures cover each 0.5' pixel of the field."""
    edges = np.arange(-HALF_SIZE, HALF_SIZE + COVER_PIX / 2, COVER_PIX)
    centres = 0.5 * (edges[1:] + edges[:-1])
    gx, gy = np.meshgrid(centres, centres)
    n_long = np.zeros((5,) + gx.shape, np.int16)
    n_short = np.zeros_like(n_long)
    for b, short, dx, dy in zip(log["band"], log["short"], log["dx"], log["dy"]):
        inside = _in_footprint(gx, gy, dx, dy)
        (n_short if short else n_long)[b] += inside
    return n_long, n_short


def _pixel(xi, eta):
    n = int(round(2 * HALF_SIZE / COVER_PIX))
    ix = np.clip(((xi + HALF_SIZE) / COVER_PIX).astype(np.int64), 0, n - 1)
    iy = np.clip(((eta + HALF_SIZE) / COVER_PIX).astype(np.int64), 0, n - 1)
    return iy, ix


# ---------------------------------------------------------------------------------------------
# Isochrones from uwastro465isos (PARSEC v1.2S, CMD 3.7, SDSS ugriz, Kroupa IMF)


def _isochrone_file() -> Path:
    import uwastro465isos

    return Path(uwastro465isos.__file__).parent / "data" / "isochrones_ugriz.dat"


# The four isochrones the simulation uses: Hydra II, thin disk, thick disk, halo.
_ISOCHRONES = ((-2.0, 10.1), (0.0, 9.8), (-0.5, 10.0), (-1.5, 10.1))


@lru_cache(maxsize=1)
def _isochrone_tables() -> dict[tuple[float, float], np.ndarray]:
    """One pass over the 33 MB file, keeping only the rows of the isochrones we use."""
    rows: dict[tuple[float, float], list[list[str]]] = {key: [] for key in _ISOCHRONES}
    with _isochrone_file().open() as f:
        for line in f:
            tok = line.split()
            if len(tok) < 33 or not tok[0][0].isdigit():  # comments and column headers
                continue
            key = (round(float(tok[1]), 2), round(float(tok[2]), 2))  # logAge is 10.10001
            if key in rows:
                rows[key].append(tok)
    return {key: np.array(r, dtype=float) for key, r in rows.items()}


def _isochrone(mh: float, log_age: float) -> dict[str, np.ndarray]:
    """One isochrone: int_IMF (strictly rising), initial mass, label and M_ugriz."""
    a = _isochrone_tables()[(mh, log_age)]
    # Columns: 3 Mini, 4 int_IMF, 9 label, 28..32 u g r i z. Label 9 = post-AGB/white dwarf.
    a = a[a[:, 9] < 9]
    a = a[np.concatenate([[True], np.diff(a[:, 4]) > 0])]  # np.interp needs rising x
    return {"imf": a[:, 4], "mini": a[:, 3], "label": a[:, 9], "mags": a[:, 28:33]}


def _iso_mags(iso, imf):
    return np.column_stack([np.interp(imf, iso["imf"], iso["mags"][:, b]) for b in range(5)])


def _imf_where_ms_reaches(iso, abs_g):
    """int_IMF of the main-sequence star with M_g = abs_g: every star above it is brighter."""
    ms = iso["label"] <= 1
    mg, imf = iso["mags"][ms, 1], iso["imf"][ms]
    # Along the main sequence M_g falls as int_IMF rises; np.interp wants rising x.
    return np.interp(-np.asarray(abs_g), -mg, imf, left=imf[0], right=imf[-1])


# ---------------------------------------------------------------------------------------------
# Hydra II


def _template_rrab(phase):
    """RRab light-curve shape in magnitudes: fast rise, slow decline, zero mean, unit range."""
    grid = np.linspace(0, 1, 2048, endpoint=False)
    saw = np.where(grid < 0.85, grid / 0.85, 1.0 - (grid - 0.85) / 0.15) - 0.5
    coef = np.fft.rfft(saw)
    coef[7:] = 0  # eight harmonics: smooth, like a real RRab
    shape = np.fft.irfft(coef, len(grid))
    shape = (shape - shape.mean()) / np.ptp(shape)
    return np.interp(np.mod(phase, 1.0), grid, shape, period=1.0)


def _members(rng):
    """Hydra II stars (field-plane position, apparent ugriz, kind) and the RR Lyrae's index."""
    iso = _isochrone(-2.0, 10.1)
    # Only stars that can reach g ~ 26.5 are drawn; the rest of the IMF stays unseen.
    imf_lo = _imf_where_ms_reaches(iso, 26.5 - HYA2_DM)
    n = rng.poisson(HYA2_MASS_FORMED * (iso["imf"][-1] - imf_lo))
    mags = _iso_mags(iso, rng.uniform(imf_lo, iso["imf"][-1], n))
    kind = np.full(n, _KIND_MEMBER)

    def colours(m_g, gr, ug, ri, iz):
        g = np.asarray(m_g)
        return np.column_stack([g + ug, g, g - gr, g - gr - ri, g - gr - ri - iz])

    # The PARSEC HB is redder than Hydra II's: add blue HB stars and blue stragglers by hand.
    n_bhb, n_bss = 10, 8
    bhb = colours(
        rng.normal(0.5, 0.05, n_bhb),
        rng.uniform(-0.2, 0.0, n_bhb),
        rng.normal(1.15, 0.05, n_bhb),
        rng.uniform(-0.15, -0.05, n_bhb),
        rng.uniform(-0.1, 0.0, n_bhb),
    )
    bss = colours(
        rng.uniform(2.5, 3.8, n_bss),
        rng.uniform(0.0, 0.15, n_bss),
        rng.normal(1.0, 0.05, n_bss),
        rng.uniform(0.0, 0.05, n_bss),
        rng.uniform(-0.02, 0.03, n_bss),
    )
    # Three RR Lyrae on the HB (mean mags); the first, the brightest, gets a light curve.
    rrl = colours(
        np.array([RRL_MG, RRL_MG + 0.03, RRL_MG + 0.06]),
        np.array([0.20, 0.18, 0.12]),
        np.full(3, 1.15),
        np.full(3, 0.06),
        np.full(3, 0.02),
    )
    mags = np.vstack([mags, bhb, bss, rrl])
    kind = np.concatenate([kind, np.full(n_bhb + n_bss, _KIND_MEMBER), np.full(3, _KIND_RRL)])

    x, y = _plummer(rng, len(mags), HYA2_RH_ARCMIN / 60.0, HYA2_ELL, HYA2_PA)
    ra, dec = _to_sky(x, y, HYA2_RA, HYA2_DEC)
    ra[-3], dec[-3] = RRL_RA, RRL_DEC  # the light-curve star, where the real one is
    xi, eta = _to_plane(ra, dec)
    mags = mags + HYA2_DM + EXT * _ebv(xi, eta)[:, None]
    rrl_index = len(mags) - 3
    return {"xi": xi, "eta": eta, "mags": mags, "kind": kind}, rrl_index


# ---------------------------------------------------------------------------------------------
# Milky Way foreground: three components, each one isochrone spread along the line of sight

_L, _B = np.radians(295.6), np.radians(30.5)
_R0, _Z0 = 8.2, 0.025  # kpc


def _galactocentric(d):
    x = _R0 - d * np.cos(_B) * np.cos(_L)
    y = d * np.cos(_B) * np.sin(_L)
    z = _Z0 + d * np.sin(_B)
    return np.hypot(x, y), z


def _rho_thin(d):
    r, z = _galactocentric(d)
    return 0.060 * np.exp(-(r - _R0) / 2.6 - np.abs(z) / 0.30)  # Msun formed per pc^3


def _rho_thick(d):
    r, z = _galactocentric(d)
    return 0.060 * 0.12 * np.exp(-(r - _R0) / 3.6 - np.abs(z) / 0.90)


def _rho_halo(d):
    # Broken power law, flattened (Deason et al. 2011 shape), 0.2% of the disk near the Sun.
    r, z = _galactocentric(d)
    rq = np.sqrt(r**2 + (z / 0.6) ** 2)
    rq_sun = _R0
    inner = (rq / rq_sun) ** -2.5
    outer = (27.0 / rq_sun) ** -2.5 * (rq / 27.0) ** -4.5
    return 0.060 * 0.002 * np.where(rq < 27.0, inner, outer)


_FOREGROUND = (  # name, density, [M/H], log age
    ("thin", _rho_thin, 0.0, 9.8),
    ("thick", _rho_thick, -0.5, 10.0),
    ("halo", _rho_halo, -1.5, 10.1),
)


def _foreground(rng, scale):
    """Foreground stars down to g ~ 26.5, drawn shell by shell along the line of sight,
    spread uniformly over the box that holds the field."""
    omega = scale * (2 * HALF_SIZE) ** 2 * (np.pi / 180.0) ** 2
    edges = np.geomspace(0.02, 400.0, 1601)  # kpc
    d_mid = np.sqrt(edges[1:] * edges[:-1])
    shell_pc3 = omega * d_mid**2 * np.diff(edges) * 1e9
    dm = 5 * np.log10(d_mid) + 10.0
    dust = 1.0 - np.exp(-d_mid * np.sin(_B) / 0.125)  # dust layer of 125 pc scale height
    mags, dist = [], []
    for _name, rho, mh, age in _FOREGROUND:
        iso = _isochrone(mh, age)
        imf_lo = _imf_where_ms_reaches(iso, 26.5 - dm - EXT[1] * 0.06 * dust)
        counts = rng.poisson(rho(d_mid) * shell_pc3 * (iso["imf"][-1] - imf_lo))
        shell = np.repeat(np.arange(len(d_mid)), counts)
        imf = rng.uniform(imf_lo[shell], iso["imf"][-1])
        d = np.exp(rng.uniform(np.log(edges[shell]), np.log(edges[shell + 1])))
        mags.append(_iso_mags(iso, imf) + (5 * np.log10(d) + 10.0)[:, None])
        dist.append(d)
    mags, dist = np.vstack(mags), np.concatenate(dist)
    xi = rng.uniform(-HALF_SIZE, HALF_SIZE, len(mags))
    eta = rng.uniform(-HALF_SIZE, HALF_SIZE, len(mags))
    # Nearby disk stars sit in front of part of the dust.
    in_front = 1.0 - np.exp(-dist * np.sin(_B) / 0.125)
    mags += EXT * (_ebv(xi, eta) * in_front)[:, None]
    return {"xi": xi, "eta": eta, "mags": mags}


# ---------------------------------------------------------------------------------------------
# Background galaxies


def _galaxy_density(rng):
    """Relative galaxy density on CLUSTER_PIX cells over the box: a lognormal field, mean 1."""
    n = int(np.ceil(2 * HALF_SIZE / CLUSTER_PIX))
    field = ndimage.gaussian_filter(rng.normal(0, 1, (n, n)), CLUSTER_SCALE / CLUSTER_PIX, mode="wrap")
    return np.exp(CLUSTER_RMS * field / field.std() - CLUSTER_RMS**2 / 2)


def _second_overdensity(rng):
    """The galaxy group's members: faint, compact and blue, in a Plummer sphere."""
    n = rng.poisson(GROUP2_N)
    x, y = _plummer(rng, n, GROUP2_RADIUS)
    ra, dec = _to_sky(x, y, GROUP2_RA, GROUP2_DEC)
    xi, eta = _to_plane(ra, dec)
    g = rng.uniform(23.0, 24.8, n)
    gr = rng.normal(0.1, 0.12, n)
    mags = np.column_stack([g + rng.normal(0.5, 0.2, n), g, g - gr, g - gr - 0.2, g - gr - 0.3])
    mags += EXT * _ebv(xi, eta)[:, None]
    return {"xi": xi, "eta": eta, "mags": mags, "sharp0": np.abs(rng.normal(0.0, 0.12, n))}


def _galaxy_g(rng, n):
    """True g: counts rise 0.45 dex/mag, 0.32 beyond g = 23.5, then are cut off near g = 25.

    Real counts keep rising; the cut-off keeps the table near the size of the real field's
    count (1.17 million to g = 25) instead of listing every galaxy that r or i would detect.
    """
    grid = np.linspace(16.0, 26.0, 4001)
    log_n = np.where(grid < 23.5, 0.45 * (grid - 23.5), 0.32 * (grid - 23.5))
    taper = _logistic((GAL_G_CUTOFF - grid) / 0.12)
    cdf = np.cumsum(10**log_n * taper)
    cdf /= cdf[-1]
    return np.interp(rng.uniform(cdf[0], 1.0, n), cdf, grid)


def _galaxies(rng, xi, eta):
    n = len(xi)
    g = _galaxy_g(rng, n)
    blue = rng.uniform(0, 1, n) < 0.45 + 0.35 * np.clip((g - 19.0) / 6.0, 0, 1)

    def draw(mu_b, sd_b, mu_r, sd_r):
        return np.where(blue, rng.normal(mu_b, sd_b, n), rng.normal(mu_r, sd_r, n))

    gr = draw(0.40, 0.20, 1.15, 0.30)
    ug = draw(0.55, 0.30, 1.70, 0.40)
    ri = draw(0.28, 0.15, 0.55, 0.20)
    iz = draw(0.12, 0.15, 0.35, 0.15)
    mags = np.column_stack([g + ug, g, g - gr, g - gr - ri, g - gr - ri - iz])
    mags += EXT * _ebv(xi, eta)[:, None]
    # Apparent size in units of sharp: big and bright, small and faint, with a lognormal spread.
    t = np.clip((25.0 - g) / 6.0, 0, 1)
    median = GAL_SHARP_FAINT + (GAL_SHARP_BRIGHT - GAL_SHARP_FAINT) * t
    return mags, median * np.exp(rng.normal(0, 0.55, n))


# ---------------------------------------------------------------------------------------------
# Photometry: errors, completeness, detections per exposure, morphology


def _mag_error(m, m5):
    x = 10 ** (0.4 * np.minimum(m - m5, 10.0))
    rand2 = (0.04 - ERR_GAMMA) * x + ERR_GAMMA * x**2
    return np.sqrt(rand2 + ERR_FLOOR**2)


def _logistic(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -50, 50)))


def _observe(rng, cover, xi, eta, mags, kind, sharp0):
    """Everything a SMASH-like pipeline would measure; returns columns and the detected mask."""
    n = len(xi)
    n_long_map, n_short_map = cover
    iy, ix = _pixel(xi, eta)
    galaxy = kind == _KIND_GALAXY
    size_penalty = np.where(galaxy, 0.1 * np.minimum(sharp0, 1.5), 0.0)  # extended = shallower
    m5_long = M5 - 1.25 * np.log10(N_LONG + SHORT_WEIGHT * N_SHORT)
    m5_short = m5_long - 1.25 * np.log10(1 / SHORT_WEIGHT)

    out = {}
    detected = np.zeros(n, bool)
    has_long = np.zeros(n, bool)
    has_short = np.zeros(n, bool)
    best_err = np.full(n, 9.99)
    ndet_total = np.zeros(n, np.int16)
    for b in (1, 0, 2, 3, 4):  # g first: the catalogue is g-selected (see GAL_G_CUTOFF)
        name, m = BANDS[b], mags[:, b]
        use_long = n_long_map[b][iy, ix] * (m > SAT_LONG[b])
        use_short = n_short_map[b][iy, ix] * (m > SAT_SHORT[b])
        weight = use_long + SHORT_WEIGHT * use_short
        full = N_LONG[b] + SHORT_WEIGHT * N_SHORT
        m5 = M5[b] + 1.25 * np.log10(np.maximum(weight, 1e-3) / full) - size_penalty
        m_obs = m + rng.normal(0, 1, n) * _mag_error(m, m5)
        err = _mag_error(m_obs, m5)
        p_long = 0.995 * _logistic((m5_long[b] + FORCED_REACH_LONG - size_penalty - m) / 0.3)
        p_short = 0.995 * _logistic((m5_short[b] + FORCED_REACH_SHORT - size_penalty - m) / 0.3)
        n_l = rng.binomial(use_long, p_long)
        n_s = rng.binomial(use_short, p_short)
        if name == "g":
            # The g stack finds objects on their measured flux: 50% complete at m5 + 0.4.
            detected = (weight > 0) & (rng.uniform(0, 1, n) < _logistic((m5 + 0.4 - m_obs) / 0.12))
            n_l = np.where(detected & (n_l + n_s == 0) & (use_long > 0), 1, n_l)
            n_s = np.where(detected & (n_l + n_s == 0), 1, n_s)
            measured = detected
        else:
            measured = (n_l + n_s) > 0  # forced photometry at the position found in g
        ndet = np.where(measured, n_l + n_s, 0).astype(np.int16)
        has_long |= measured & (n_l > 0)
        has_short |= measured & (n_s > 0)
        ndet_total += ndet
        best_err = np.where(measured, np.minimum(best_err, err), best_err)
        out[name + "mag"] = np.where(measured, m_obs, 99.99).astype(np.float32)
        out[name + "err"] = np.where(measured, err, 9.99).astype(np.float32)
        out["ndet" + name] = ndet

    # Morphology: sharp ~ 0 for point sources, positive for galaxies; noise grows with error.
    sig = np.minimum(best_err, 1.0)
    out["sharp"] = (sharp0 + rng.normal(0, 1, n) * (0.03 + 0.9 * sig)).astype(np.float32)
    bright = np.exp(-(np.minimum(mags[:, 1], mags[:, 2]) - 15.0) / 2.5)  # PSF mismatch, bright
    chi = 1.0 + 0.6 * np.minimum(sharp0, 2.0) * (1 + bright) + 0.3 * bright
    out["chi"] = (chi * np.exp(rng.normal(0, 0.08, n))).astype(np.float32)
    confidence = np.clip(1.0 - sig / 0.3, 0, 1)
    resolved = np.clip(sharp0 / 0.5, 0, 1)
    prob = 0.5 + 0.48 * confidence * np.where(galaxy, -resolved, 1.0)
    out["prob"] = np.clip(prob + rng.normal(0, 0.02, n), 0, 1).astype(np.float32)
    # Astrometry: 20 mas floor, then ~half the seeing over the signal-to-noise.
    pos_err = np.sqrt(0.02**2 + (0.5 * sig) ** 2) * (1 + 0.5 * np.minimum(sharp0, 2))
    out["raerr"] = (pos_err * np.exp(rng.normal(0, 0.1, n))).astype(np.float32)
    out["decerr"] = (pos_err * np.exp(rng.normal(0, 0.1, n))).astype(np.float32)
    out["ndet"] = ndet_total
    out["depthflag"] = (has_short * 1 + has_long * 2).astype(np.int16)
    # flag: 1 where a band had to use short exposures only (saturated in the long ones).
    sat = np.any(mags < SAT_LONG, axis=1)
    out["flag"] = sat.astype(np.int16)
    return out, detected


# ---------------------------------------------------------------------------------------------
# The RR Lyrae light curve: one row per exposure covering the star


def _light_curve(rng, log, xi, eta, mean_mags, ra, dec):
    m5_long = M5 - 1.25 * np.log10(N_LONG + SHORT_WEIGHT * N_SHORT)
    m5_short = m5_long - 1.25 * np.log10(1 / SHORT_WEIGHT)
    rows = []
    for k in range(len(log["mjd"])):
        b, short = log["band"][k], log["short"][k]
        if not _in_footprint(xi, eta, log["dx"][k], log["dy"][k]):
            continue
        phase = (log["mjd"][k] - RRL_EPOCH) / RRL_PERIOD
        m_true = mean_mags[b] + RRL_AMP_G * RRL_AMP_RATIO[b] * _template_rrab(phase)
        m5 = m5_short[b] if short else m5_long[b]
        sigma = np.sqrt(_mag_error(m_true, m5) ** 2 + 0.01**2)
        cmag = m_true + rng.normal(0, sigma)
        rows.append((k, b, cmag, float(np.sqrt(_mag_error(cmag, m5) ** 2 + 0.01**2))))
    k = np.array([r[0] for r in rows])
    astrometric = 0.02 / 3600.0
    return {
        "exposure": [f"{log['expnum'][i]:08d}" for i in k],
        "ra": ra + rng.normal(0, astrometric, len(k)) / np.cos(np.radians(dec)),
        "dec": dec + rng.normal(0, astrometric, len(k)),
        "mjd": log["mjd"][k],
        "band": np.array([r[1] for r in rows]),
        "cmag": np.array([r[2] for r in rows]),
        "cerr": np.array([r[3] for r in rows]),
    }


def _rrl_object_values(lc):
    """Object-table means of the light curve, as SMASH averages its source measurements."""
    values = {}
    for b, name in enumerate(BANDS):
        sel = lc["band"] == b
        flux = 10 ** (-0.4 * lc["cmag"][sel])
        values[name + "mag"] = np.float32(-2.5 * np.log10(flux.mean()))
        values[name + "err"] = np.float32(np.sqrt(np.sum(lc["cerr"][sel] ** 2)) / sel.sum())
        values["ndet" + name] = np.int16(sel.sum())
    return values


# ---------------------------------------------------------------------------------------------
# Tables


OBJECT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("fieldid", pa.string()),
        ("ra", pa.float64()),
        ("dec", pa.float64()),
        ("raerr", pa.float32()),
        ("decerr", pa.float32()),
    ]
    + [(f"{b}{s}", pa.float32()) for b in BANDS for s in ("mag", "err")]
    + [("ndet", pa.int16())]
    + [(f"ndet{b}", pa.int16()) for b in BANDS]
    + [
        ("depthflag", pa.int16()),
        ("sharp", pa.float32()),
        ("chi", pa.float32()),
        ("prob", pa.float32()),
        ("ebv", pa.float32()),
        ("flag", pa.int16()),
        ("random_id", pa.float32()),
    ]
)

SOURCE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("exposure", pa.string()),
        ("ra", pa.float64()),
        ("dec", pa.float64()),
        ("mjd", pa.float64()),
        ("filter", pa.string()),
        ("cmag", pa.float32()),
        ("cerr", pa.float32()),
    ]
)


def _strip_rng(seed, strip, purpose):
    return np.random.default_rng([seed, 1000 + strip, purpose])


def _strip_population(seed, strip, scale, foreground, members, density, group):
    """Galaxies drawn for one declination strip, cell by cell of the density field, plus the
    group's galaxies and the stars that fall in it."""
    lo, hi = np.linspace(-HALF_SIZE, HALF_SIZE, N_STRIPS + 1)[strip : strip + 2]
    rng = _strip_rng(seed, strip, 0)
    n_cells = density.shape[0]
    rows = np.arange(int((lo + HALF_SIZE) / CLUSTER_PIX), min(n_cells, int(np.ceil((hi + HALF_SIZE) / CLUSTER_PIX))))
    expect = density[rows] * GALAXY_DENSITY * CLUSTER_PIX**2 * scale
    counts = rng.poisson(expect).ravel()
    cell = np.repeat(np.arange(counts.size), counts)
    row, col = rows[cell // n_cells], cell % n_cells
    g_xi = -HALF_SIZE + (col + rng.uniform(0, 1, cell.size)) * CLUSTER_PIX
    g_eta = -HALF_SIZE + (row + rng.uniform(0, 1, cell.size)) * CLUSTER_PIX
    keep = (g_eta >= lo) & (g_eta < hi) & (g_xi < HALF_SIZE)
    g_xi, g_eta = g_xi[keep], g_eta[keep]
    g_mags, g_sharp = _galaxies(rng, g_xi, g_eta)
    gsel = (group["eta"] >= lo) & (group["eta"] < hi)
    fsel = (foreground["eta"] >= lo) & (foreground["eta"] < hi)
    msel = (members["eta"] >= lo) & (members["eta"] < hi)
    n_gal, n_fg = len(g_xi) + int(gsel.sum()), int(fsel.sum())
    return {
        "xi": np.concatenate([g_xi, group["xi"][gsel], foreground["xi"][fsel], members["xi"][msel]]),
        "eta": np.concatenate([g_eta, group["eta"][gsel], foreground["eta"][fsel], members["eta"][msel]]),
        "mags": np.vstack([g_mags, group["mags"][gsel], foreground["mags"][fsel], members["mags"][msel]]),
        "kind": np.concatenate([np.full(n_gal, _KIND_GALAXY), np.full(n_fg, _KIND_STAR), members["kind"][msel]]),
        "sharp0": np.concatenate([g_sharp, group["sharp0"][gsel], np.zeros(n_fg), np.zeros(msel.sum())]),
        "member": np.concatenate([np.full(n_gal + n_fg, -1), np.flatnonzero(msel)]),
    }


def _catalogue_columns(rng, cover, sky):
    """Measured columns of one strip, kept rows only, in RA order."""
    cols, detected = _observe(rng, cover, sky["xi"], sky["eta"], sky["mags"], sky["kind"], sky["sharp0"])
    ra, dec = _to_sky(sky["xi"], sky["eta"])
    cols["ra"] = ra + rng.normal(0, 1, len(ra)) * cols["raerr"] / 3600.0 / np.cos(np.radians(dec))
    cols["dec"] = dec + rng.normal(0, 1, len(ra)) * cols["decerr"] / 3600.0
    cols["ebv"] = _ebv(sky["xi"], sky["eta"])
    cols["random_id"] = rng.uniform(0, 100, len(ra))  # as Data Lab tables have
    cols["member"] = sky["member"]
    order = np.flatnonzero(detected)
    order = order[np.argsort(cols["ra"][order], kind="stable")]
    return {k: v[order] for k, v in cols.items()}


def _strip_table(cols, first_seq, rrl_row=None):
    """The strip's rows as an Arrow table; ids count on from first_seq, skipping RRL_SEQ,
    which the light-curve star (row rrl_row, if it is in this strip) carries instead."""
    n = len(cols["ra"])
    numbers = np.arange(first_seq, first_seq + n, dtype=np.int64)
    numbers += numbers >= RRL_SEQ
    if rrl_row is not None:
        numbers[rrl_row] = RRL_SEQ
    seq = pa.array(numbers).cast(pa.string())
    arrays = {
        "id": pc.binary_join_element_wise(FIELD_ID, seq, "."),  # 'field.sequence', as SMASH
        "fieldid": pa.array(np.full(n, FIELD_ID, dtype=object), pa.string()),
    }
    for f in OBJECT_SCHEMA:
        if f.name not in arrays:
            arrays[f.name] = pa.array(np.asarray(cols[f.name]).astype(f.type.to_pandas_dtype()))
    return pa.Table.from_arrays([arrays[f.name] for f in OBJECT_SCHEMA], schema=OBJECT_SCHEMA)


def _source_table(object_id: str, lc) -> pa.Table:
    n = len(lc["mjd"])
    return pa.Table.from_arrays(
        [
            pa.array([object_id] * n, pa.string()),
            pa.array(lc["exposure"], pa.string()),
            pa.array(lc["ra"], pa.float64()),
            pa.array(lc["dec"], pa.float64()),
            pa.array(lc["mjd"], pa.float64()),
            pa.array([BANDS[b] for b in lc["band"]], pa.string()),
            pa.array(lc["cmag"].astype(np.float32)),
            pa.array(lc["cerr"].astype(np.float32)),
        ],
        schema=SOURCE_SCHEMA,
    )


class _AtomicParquet:
    """A ParquetWriter on a hidden temporary name, renamed into place only when complete."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.writer = pq.ParquetWriter(self.tmp, schema, compression="zstd")

    def __enter__(self):
        return self.writer

    def __exit__(self, exc_type, exc, tb):
        self.writer.close()
        if exc_type is None:
            os.replace(self.tmp, self.path)
        else:
            self.tmp.unlink(missing_ok=True)


def _attach_light_curve(rng, log, members, rrl_index, cols, j) -> pa.Table:
    """Light curve of the RR Lyrae star in row j; its object row becomes the epochs' mean."""
    lc = _light_curve(
        rng,
        log,
        members["xi"][rrl_index],
        members["eta"][rrl_index],
        members["mags"][rrl_index],
        cols["ra"][j],
        cols["dec"][j],
    )
    for key, val in _rrl_object_values(lc).items():
        cols[key][j] = val
    cols["ndet"][j] = sum(cols["ndet" + b][j] for b in BANDS)
    return _source_table(RRL_OBJECT_ID, lc)


def build(outdir: Path, seed: int = 169, scale: float = 1.0) -> dict[str, Path]:
    """Write smash_sim.object and smash_sim.source as Parquet files into outdir.

    ``scale`` thins the foreground and the galaxies (0.05 for quick tests); Hydra II stays whole.
    One declination strip at a time is simulated and written, to keep memory modest.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    paths = {
        "smash_sim.object": outdir / "smash_sim.object.parquet",
        "smash_sim.source": outdir / "smash_sim.source.parquet",
    }

    log = observing_log(seed)
    cover = _coverage_maps(log)
    members, rrl_index = _members(np.random.default_rng([seed, 2]))
    foreground = _foreground(np.random.default_rng([seed, 3]), scale)
    density = _galaxy_density(np.random.default_rng([seed, 4]))
    group = _second_overdensity(np.random.default_rng([seed, 5]))

    next_seq, source = 1, None
    with _AtomicParquet(paths["smash_sim.object"], OBJECT_SCHEMA) as writer:
        for strip in range(N_STRIPS):
            sky = _strip_population(seed, strip, scale, foreground, members, density, group)
            cols = _catalogue_columns(_strip_rng(seed, strip, 1), cover, sky)
            hit = np.flatnonzero(cols["member"] == rrl_index)
            if len(hit):
                rng = _strip_rng(seed, strip, 2)
                source = _attach_light_curve(rng, log, members, rrl_index, cols, hit[0])
            rrl_row = int(hit[0]) if len(hit) else None
            writer.write_table(_strip_table(cols, next_seq, rrl_row), row_group_size=250_000)
            next_seq += len(cols["ra"])
    if source is None:
        raise RuntimeError("the RR Lyrae star with a light curve was not detected")
    with _AtomicParquet(paths["smash_sim.source"], SOURCE_SCHEMA) as writer:
        writer.write_table(source)
    return paths
