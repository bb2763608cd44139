"""Data Lab's cutout service, /svc/cutout?col=&siaRef=&extn=&POS=&SIZE=[&preview=true]: a FITS
file with the pixels and the WCS in its primary HDU, or a PNG preview. The same URL gives the
same bytes (astropy's download_file caches by URL)."""

from __future__ import annotations

import io

import numpy as np

from starbox.errors import StarboxError
from starbox.images import sia, synth

FITS_TYPE, PNG_TYPE = "image/fits", "image/png"


def cutout(
    conn, col: str | None, sia_ref: str | None, pos: str | None, size: str | None, preview: str | None
) -> tuple[bytes, str]:
    """(bytes, media type) of one cutout; `conn` reads the catalog it is rendered from."""
    if col:
        sia.collection(col)
    if not sia_ref:
        raise StarboxError("Error: siaRef names the image (an SIA search gives the access_url to use)")
    product = synth.product(sia_ref)
    p, s = sia.parse_pos_size(pos, size, need=False)
    if p is None or s is None:
        raise StarboxError(
            "Error: give POS=ra,dec and SIZE=width[,height] in degrees: the whole stack is "
            f"~{2 * sia.EDGE:.1f} deg a side, too large to send (at most {synth.MAX_PIX * synth.PIXSCALE:.3f} deg)"
        )
    bbox = synth.box(p[0], p[1], s[0], s[1])
    objects = _objects(conn, p[0], p[1], s) if product.kind == "image" else {}
    hdul = synth.render(product, objects, bbox)
    if preview and preview.lower() in ("true", "1", "yes"):
        return _png(hdul[0].data), PNG_TYPE
    out = io.BytesIO()
    hdul.writeto(out)
    return out.getvalue(), FITS_TYPE


def _objects(conn, ra: float, dec: float, size: tuple[float, float]) -> dict[str, np.ndarray]:
    # every object whose light reaches the box: its half-diagonal plus a PSF's reach
    radius = 0.5 * float(np.hypot(*size)) + 20 / 3600
    sql, args = synth.catalog_query(ra, dec, radius)
    rows = conn.execute(sql, args).fetchall()
    names = ["ra", "dec", "sharp"] + [f"{b}mag" for b in synth.BANDS]
    cols = np.array(rows, dtype=float).reshape(-1, len(names))
    return {n: cols[:, k] for k, n in enumerate(names)}


def _png(data: np.ndarray) -> bytes:
    """An asinh-stretched grey preview, north up and east left (as the FITS shows)."""
    from matplotlib.image import imsave

    lo, hi = np.percentile(data, [1, 99.7]) if data.size else (0.0, 1.0)
    scaled = np.arcsinh(np.clip((data - lo) / max(hi - lo, 1e-9), 0, 1) * 10) / np.arcsinh(10)
    out = io.BytesIO()
    imsave(out, scaled[::-1], cmap="gray", vmin=0, vmax=1, format="png", metadata={"Software": None})  # type: ignore[dict-item]  # no version: same bytes
    return out.getvalue()
