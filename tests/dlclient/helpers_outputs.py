"""Run inside .venv-datalab: dl.helpers on the inputs tests/test_helpers.py gives (JSON on
stdin); prints their outputs as JSON for the comparison with starbox.helpers."""

import json
import runpy
import sys
from pathlib import Path

runpy.run_path(str(Path(__file__).resolve().parents[2] / "appliance" / "hub" / "datalab_sitecustomize.py"))

import numpy as np  # noqa: E402
from dl.helpers import cluster, crossmatch, utils  # noqa: E402

inputs = json.load(sys.stdin)
out = {}
csv = inputs["csv"]
out["pandas"] = utils.convert(csv, "pandas").to_dict(orient="list")
out["array"] = utils.convert(inputs["numeric_csv"], "array").tolist()
structured = utils.convert(inputs["numeric_csv"], "structarray")
out["structarray"] = {"names": list(structured.dtype.names), "rows": structured.tolist()}
table = utils.convert(csv, "table")
out["table"] = {"names": table.colnames, "rows": [list(map(str, row)) for row in table]}
x, y = inputs["ra"], inputs["dec"]
for frame_out in (None, "galactic"):
    xo, yo = utils.normalizeCoordinates(np.array(x), np.array(y), frame_out=frame_out)
    out[f"normalize_{frame_out}"] = [xo.tolist(), yo.tolist()]
m = inputs["match"]
for maxdist in (None, m["maxdist"]):
    idx, dist = crossmatch.xmatch(m["ra1"], m["dec1"], m["ra2"], m["dec2"], maxdist=maxdist)
    out[f"xmatch_{maxdist}"] = [idx.tolist(), dist.deg.tolist()]
hull = cluster.constructOutlines(np.array(x), np.array(y), None)
out["hull"] = sorted(hull.vertices.tolist())
try:
    cluster.findClusters(np.array(x), np.array(y), n_clusters=2)
    out["findClusters"] = "ran"
except Exception as exc:  # noqa: BLE001 - what dl's own does is the observation
    out["findClusters"] = type(exc).__name__
print(json.dumps(out))
