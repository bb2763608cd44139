"""`dl.helpers.crossmatch.xmatch`: the nearest counterpart of each position of one list in
another, in memory (astropy's match_to_catalog_sky); for tables in the database, use q3c."""

from __future__ import annotations

__all__ = ["xmatch"]


def xmatch(ra1, dec1, ra2, dec2, maxdist=None, units="deg", method="astropy", **kwargs):
    """Counterparts of (ra1, dec1) in (ra2, dec2).

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : sequences
        Positions in `units` (default degrees); the second set is the one searched.
    maxdist : float or None
        If given (in `units`), matches farther than this are dropped.
    method : str
        'astropy', the only one (as in dl).
    **kwargs
        Passed to ``SkyCoord.match_to_catalog_sky``, e.g. ``nthneighbor=2`` to match a list
        with itself.

    Returns
    -------
    idx : array
        For each (kept) position of the first set, the index of its counterpart in the second.
    dist2d : astropy Angle
        The separations of those matches.

    As in dl, with `maxdist` both arrays hold only the matches within it, so `idx` no longer
    lines up with the first list; use the separations of a call without `maxdist` for that.
    """
    import numpy as np
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    if method != "astropy":
        raise ValueError(f"'{method}' is not a valid method: xmatch knows 'astropy'")
    unit = getattr(u, units)
    c1 = SkyCoord(ra=np.asarray(ra1) * unit, dec=np.asarray(dec1) * unit)
    c2 = SkyCoord(ra=np.asarray(ra2) * unit, dec=np.asarray(dec2) * unit)
    idx, dist2d, _ = c1.match_to_catalog_sky(c2, **kwargs)
    if maxdist is not None:
        near = dist2d <= maxdist * unit
        idx, dist2d = idx[near], dist2d[near]
    return idx, dist2d
