"""`dl.helpers.cluster`: clusters of points in a plane (scikit-learn) and their outlines.

dl's findClusters builds its input with ``np.matrix(zip(x, y))``, which fails on Python 3;
this one gives the estimator the (n, 2) array that was meant."""

from __future__ import annotations

__all__ = ["constructOutlines", "findClusters"]


def findClusters(x, y, method="MiniBatchKMeans", **kwargs):
    """Fit a clustering estimator of ``sklearn.cluster`` to the points (x, y).

    Parameters
    ----------
    x, y : sequences
        Positions, e.g. RA and Dec (they need not be on the sky).
    method : str
        The estimator's name in ``sklearn.cluster``: 'MiniBatchKMeans' (default, fast),
        'KMeans', 'DBSCAN' (more robust, much slower), ...
    **kwargs
        The estimator's parameters; KMeans and MiniBatchKMeans get ``n_clusters=3`` unless told.

    Returns
    -------
    The fitted estimator: its ``labels_`` give each point's cluster.
    """
    import numpy as np
    import sklearn.cluster

    estimator = getattr(sklearn.cluster, method, None)
    if not isinstance(estimator, type):
        raise ValueError(f"sklearn.cluster has no estimator named {method!r}")
    if method in ("MiniBatchKMeans", "KMeans"):
        kwargs.setdefault("n_clusters", 3)
    points = np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)])
    return estimator(**kwargs).fit(points)


def constructOutlines(x, y, clusterlabels=None):
    """The convex hull of the points (x, y), a ``scipy.spatial.ConvexHull``; `clusterlabels`
    is accepted and unused, as in dl (pass one cluster's points)."""
    import numpy as np
    from scipy.spatial import ConvexHull

    return ConvexHull(np.column_stack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]))
