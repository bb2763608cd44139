"""SIA 1.0 as Data Lab serves it at /sia/<collection>: the images that overlap POS/SIZE, with
the columns of Data Lab's answer (in its order) and an access_url into the cutout service
that carries the search's POS and SIZE, as Data Lab's does."""

from __future__ import annotations

import io
import math
from urllib.parse import urlencode

import numpy as np
from astropy.io.votable.tree import Info, Resource, VOTableFile
from astropy.table import Table

from starbox.catalogs import smash
from starbox.errors import NotFound, StarboxError
from starbox.images import synth

# Data Lab's collection names for field 169's images, and Starbox's own.
COLLECTIONS = ("smash_sim", "smash_dr1", "coadd_smash_dr1", "coadd_all")
EDGE = synth.EDGE
# DECam filter edges in Angstrom (Data Lab gives em_min/em_max in Angstrom, labelled m)
EM = {
    "u": (3500.0, 4100.0),
    "g": (3960.0, 5480.0),
    "r": (5600.0, 7200.0),
    "i": (7000.0, 8500.0),
    "z": (8500.0, 10000.0),
}
COLUMNS = (
    "assoc_id access_url access_format access_estsize dataproduct_type dataproduct_subtype calib_level "
    "dataset_length im_nsubarrays im_naxes im_naxis im_pixtype im_wcsaxes im_scale obs_title obs_id "
    "obs_creator_name obs_collection obs_creation_type obs_creation_date facility_name instrument_name "
    "obs_bandpass obs_datasource proposal_id obs_publisher_did obs_release_date preview target_name "
    "target_class s_ra s_dec s_fov s_region s_calib_status s_resolution em_min em_max em_resolution "
    "em_res_power t_min t_max t_exptime t_resolution o_ucd o_unit pol_states object airmass project_code "
    "magzero prodtype seeing fwhm fileset_id exptime photflag proctype date_obs mjd_obs elliptic"
).split()
UCDS = {
    "access_url": "VOX:Image_AccessReference",
    "access_format": "VOX:Image_Format",
    "s_ra": "POS_EQ_RA_MAIN",
    "s_dec": "POS_EQ_DEC_MAIN",
}


def _pair(text: str | None, name: str, low: float, high: float, what: str) -> tuple[float, float] | None:
    if text is None or not text.strip():
        return None
    try:
        parts = [float(v) for v in text.split(",")]
    except ValueError:
        raise StarboxError(f"Error: {name} must be {what} in degrees, not {text!r}") from None
    if name == "SIZE" and len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or not all(math.isfinite(v) and low <= v <= high for v in parts):
        raise StarboxError(f"Error: {name}={text} must be {what}, each in [{low:g}, {high:g}] degrees")
    return parts[0], parts[1]


def parse_pos_size(pos: str | None, size: str | None, need: bool = True):
    """POS=ra,dec and SIZE=w[,h] in degrees, checked."""
    p = _pair(pos, "POS", -360.0, 360.0, "ra,dec")
    s = _pair(size, "SIZE", 0.0, 180.0, "width[,height]")
    if p is not None and not -90 <= p[1] <= 90:
        raise StarboxError(f"Error: POS={pos}: the declination must be within [-90, 90]")
    if need and (p is None or s is None):
        raise StarboxError("Error: give POS=ra,dec and SIZE=width[,height] in degrees")
    return p, s


def collection(name: str) -> str:
    if name.lower() not in COLLECTIONS:
        raise NotFound(
            f"Error: no image collection {name!r}; Starbox has {', '.join(COLLECTIONS)} (SMASH field 169, simulated)"
        )
    return name.lower()


def _overlaps(ra: float, dec: float, w: float, h: float) -> bool:
    xi, eta = smash._to_plane(np.array([ra]), np.array([dec]))
    w_sky = w * np.cos(np.radians(dec))  # SIZE's width is in the RA coordinate (synth.box)
    return bool(abs(xi[0]) <= EDGE + w_sky / 2 and abs(eta[0]) <= EDGE + h / 2)


def search(base_url: str, coll: str, pos: str | None, size: str | None) -> bytes:
    (ra, dec), (w, h) = parse_pos_size(pos, size)
    rows = []
    if _overlaps(ra, dec, w, h):
        for p in synth.PRODUCTS:
            rows.append(_row(base_url, coll, p, ra, dec, w, h))
    return _votable(Table(rows=rows, names=COLUMNS, dtype=[_dtype(c) for c in COLUMNS]))


def _dtype(c: str):
    return {
        "access_estsize": "i8",
        "calib_level": "i4",
        "im_naxes": "i4",
        "s_ra": "f8",
        "s_dec": "f8",
        "s_fov": "f8",
        "im_scale": "f8",
        "em_min": "f8",
        "em_max": "f8",
        "t_exptime": "f8",
        "s_resolution": "f8",
        "mjd_obs": "f8",
        "magzero": "f8",
        "seeing": "f8",
    }.get(c, "U200")


def _row(base_url: str, coll: str, p: synth.Product, ra: float, dec: float, w: float, h: float) -> dict:
    b = synth.BANDS.index(p.band)
    query = urlencode(
        {"col": coll, "siaRef": p.sia_ref, "extn": 0, "POS": f"{ra:.6f},{dec:.6f}", "SIZE": f"{w:.6f},{h:.6f}"}
    )
    url = f"{base_url}/svc/cutout?{query}"
    nx, ny = synth.shape(w, h, dec)
    values = {
        "assoc_id": "smash_sim_169_stack",
        "access_url": url,
        "access_format": "image/fits",
        "access_estsize": 2880 * 2 + 4 * nx * ny,
        "dataproduct_type": "image",
        "dataproduct_subtype": p.kind,
        "calib_level": 3,
        "dataset_length": "",
        "im_nsubarrays": "1",
        "im_naxes": 2,
        "im_naxis": f"{nx} {ny}",
        "im_pixtype": "float",
        "im_wcsaxes": "2",
        "im_scale": 0.263 / 3600,
        "obs_title": f"SMASH field 169 {p.band} stack ({p.kind}), SIMULATED by Starbox",
        "obs_id": p.sia_ref.removesuffix(".fits"),
        "obs_creator_name": "Starbox (simulation)",
        "obs_collection": coll,
        "obs_creation_type": "simulation",
        "obs_creation_date": "",
        "facility_name": "CTIO Blanco (simulated)",
        "instrument_name": "DECam",
        "obs_bandpass": p.band,
        "obs_datasource": "simulation",
        "proposal_id": "",
        "obs_publisher_did": f"ivo://starbox/sia#{coll}/{p.sia_ref}",
        "obs_release_date": "",
        "preview": url + "&preview=true",
        "target_name": "SMASH field 169",
        "target_class": "",
        "s_ra": smash.FIELD_RA,
        "s_dec": smash.FIELD_DEC,
        "s_fov": 2 * EDGE,
        "s_region": "",
        "s_calib_status": "",
        "s_resolution": float(synth.SEEING[b]),
        "em_min": EM[p.band][0],
        "em_max": EM[p.band][1],
        "em_resolution": "",
        "em_res_power": "",
        "t_min": "",
        "t_max": "",
        "t_exptime": synth.exptime(p.band),
        "t_resolution": "",
        "o_ucd": "",
        "o_unit": "count",
        "pol_states": "",
        "object": "SMASH field 169 (simulated)",
        "airmass": "",
        "project_code": "SMASH (simulated)",
        "magzero": synth.MAGZERO,
        "prodtype": p.kind,
        "seeing": float(synth.SEEING[b]),
        "fwhm": f"{synth.SEEING[b]:.2f}",
        "fileset_id": "smash_sim_169",
        "exptime": f"{synth.exptime(p.band):g}",
        "photflag": "T",
        "proctype": "Stack",
        "date_obs": "",
        "mjd_obs": 57000.0,
        "elliptic": "",
    }
    return values


def _votable(table: Table) -> bytes:
    vot = VOTableFile.from_table(table)
    resource = vot.resources[0]
    resource.type = "results"
    resource.infos.append(Info(name="QUERY_STATUS", value="OK"))
    for f in resource.tables[0].fields:
        if f.datatype == "unicodeChar":
            f.datatype, f.arraysize = "char", "*"
        if f.name in UCDS:
            f.ucd = UCDS[f.name]
    out = io.BytesIO()
    vot.to_xml(out)
    return out.getvalue()


def error_document(message: str) -> bytes:
    vot = VOTableFile()
    resource = Resource(type="results")
    info = Info(name="QUERY_STATUS", value="ERROR")
    info.content = message
    resource.infos.append(info)
    vot.resources.append(resource)
    out = io.BytesIO()
    vot.to_xml(out)
    return out.getvalue()
