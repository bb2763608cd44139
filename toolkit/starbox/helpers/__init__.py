"""Data Lab's `dl.helpers` at the same paths under `starbox.helpers`: a notebook's import of
`convert` from `dl.helpers.utils` becomes one from `starbox.helpers.utils`.

utils: convert, normalizeCoordinates, vospace_readable_fileobj, resolve (offline: `names`);
crossmatch: xmatch; plot: plotSkymapScatter; cluster: findClusters, constructOutlines;
all: everything at once. Each keeps dl's signature and defaults; where dl's own code no longer
runs on today's Python and numpy (findClusters, plot's import), this one does what it meant.
"""
