"""Every helper at once, as ``from dl.helpers import all``."""

from starbox.helpers.cluster import constructOutlines, findClusters
from starbox.helpers.crossmatch import xmatch
from starbox.helpers.plot import plotSkymapScatter
from starbox.helpers.utils import convert, normalizeCoordinates, resolve, vospace_readable_fileobj

__all__ = [
    "constructOutlines",
    "convert",
    "findClusters",
    "normalizeCoordinates",
    "plotSkymapScatter",
    "resolve",
    "vospace_readable_fileobj",
    "xmatch",
]
