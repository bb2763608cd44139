"""`dl.helpers.plot.plotSkymapScatter`: points on an all-sky projection, coloured by a value or
by cluster, with the clusters' outlines (dl's own module fails at its import of `helpers`)."""

from __future__ import annotations

from starbox.helpers.cluster import constructOutlines

__all__ = ["plotSkymapScatter"]


def plotSkymapScatter(
    x,
    y,
    c=None,
    clusterlabels=None,
    s=3,
    plot="both",
    xlabel="RA",
    ylabel="Dec",
    clabel="",
    title="",
    projection="aitoff",
    **kwargs,
):
    """Scatter x, y (radians, e.g. from normalizeCoordinates) on an all-sky projection.

    Parameters
    ----------
    c : sequence or None
        A value per point for the colour map (with a colour bar labelled `clabel`).
    clusterlabels : sequence or None
        A cluster label per point: each cluster in its own colour, and with `plot` 'outlines'
        or 'both' its convex hull in red ('scatter' draws the points only).
    s : float
        Marker size. `projection`: any of matplotlib's ('aitoff', 'hammer', 'mollweide', ...).
    **kwargs
        Passed to ``scatter``.

    Returns
    -------
    The matplotlib Axes (dl returns nothing; the figure is the current one, as in dl).
    """
    import matplotlib.pyplot as plt
    import numpy as np

    if plot not in ("both", "scatter", "outlines"):
        raise ValueError(f"plot is 'both', 'scatter' or 'outlines', not {plot!r}")
    x, y = np.asarray(x), np.asarray(y)
    plt.figure(figsize=(14, 7))
    ax = plt.subplot(111, projection=projection)
    if clusterlabels is not None:
        labels = np.asarray(clusterlabels)
        for label in np.unique(labels):
            sel = labels == label
            if plot in ("scatter", "both"):
                ax.scatter(x[sel], y[sel], marker="o", s=s, edgecolors="none", alpha=1, label=label, **kwargs)
            if plot in ("outlines", "both") and sel.sum() >= 3:
                hull = constructOutlines(x[sel], y[sel], labels)
                corners = np.append(hull.vertices, hull.vertices[0])  # closed
                ax.plot(x[sel][corners], y[sel][corners], "r-", lw=2)
        if plot in ("scatter", "both"):
            ax.legend(loc="upper right", title="clusters", markerscale=5)
    else:
        points = ax.scatter(x, y, marker="o", s=s, c=c, edgecolors="none", alpha=1, **kwargs)
        if c is not None:
            plt.colorbar(points).set_label(clabel)
    ax.set_title(title, y=1.08)
    ax.grid(True)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax
