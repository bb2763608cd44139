"""`dl.helpers.utils`: convert, normalizeCoordinates, vospace_readable_fileobj and resolve."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from io import BytesIO

from starbox.client.convert import convert
from starbox.helpers.names import resolve

__all__ = ["convert", "normalizeCoordinates", "resolve", "vospace_readable_fileobj"]

_FRAME_AXES = {"galactic": ("l", "b"), "icrs": ("ra", "dec")}


def normalizeCoordinates(x, y, frame_in="icrs", units_in="deg", frame_out=None, wrap_at=180):
    """Coordinates ready for matplotlib's all-sky projections: radians, x wrapped at `wrap_at`.

    Parameters
    ----------
    x, y : sequences
        Positions in `frame_in` ('icrs' or 'galactic'), in `units_in` (e.g. 'deg').
    frame_out : str or None
        If given and not `frame_in`, the positions are transformed to it first.
    wrap_at : float
        The x angle is wrapped at this value (in `units_in`): 180 gives -pi..pi, as the
        projections expect.

    Returns
    -------
    xout, yout : arrays of radians
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    if frame_in not in _FRAME_AXES or (frame_out is not None and frame_out not in _FRAME_AXES):
        raise ValueError(f"frames are {sorted(_FRAME_AXES)}, not {frame_in!r} / {frame_out!r}")
    unit = getattr(u, units_in)
    c = SkyCoord(x * unit, y * unit, frame=frame_in)
    frame = frame_in
    if frame_out is not None and frame_out != frame_in:
        c, frame = c.transform_to(frame_out), frame_out
    lon, lat = _FRAME_AXES[frame]
    return getattr(c, lon).wrap_at(wrap_at * unit).radian, getattr(c, lat).radian


@contextmanager
def vospace_readable_fileobj(name_or_obj, token=None, **kwargs) -> Iterator:
    """A readable file object for a storage name (``vos://file``, ``mydb://`` excluded), a
    local path, a URL or a file object, as dl's: the storage is read through storeClient;
    everything else goes to astropy's ``get_readable_fileobj`` with `kwargs` (e.g. encoding).
    """
    from astropy.utils.data import get_readable_fileobj

    fileobj, opened = name_or_obj, False
    if isinstance(name_or_obj, bytes):
        name_or_obj = name_or_obj.decode()
    if isinstance(name_or_obj, str) and name_or_obj.startswith("vos://"):
        from starbox import storeClient

        body = storeClient.get(fr=name_or_obj, to="", mode="binary", verbose=False, token=token)
        if isinstance(body, str):  # storeClient answers an error as text, as dl's does
            raise OSError(body)
        fileobj, opened = BytesIO(body), True
    try:
        with get_readable_fileobj(fileobj, **kwargs) as f:
            yield f
    finally:
        if opened:
            fileobj.close()
