"""Drive the real astro-datalab 2.24.0 client against Starbox; run inside .venv-datalab.

Usage: python run.py <area> <json args>. Prints one JSON object of observations on the last
line; tests/test_datalab_client.py makes the assertions. Only the service URLs are changed.
"""

import json
import os
import runpy
import sys
import traceback
from pathlib import Path

# dl's modules find X-DL-OriginIP by "connecting" a UDP socket to 8.8.8.8 at import time, which
# needs a default route: the same fallback the Data Lab client kernel installs as its sitecustomize.
runpy.run_path(str(Path(__file__).resolve().parents[2] / "appliance" / "hub" / "datalab_sitecustomize.py"))

from dl import authClient as ac, queryClient as qc, resClient as rc, storeClient as sc  # noqa: E402


def point_at(base):
    ac.set_svc_url(base + "/auth")
    qc.set_svc_url(base + "/query")
    sc.set_svc_url(base + "/storage")
    rc.set_svc_url(base + "/res")
    sc.sc_client.qm_svc_url = base + "/query"


def attempt(fn, *a, **kw):
    """Call fn; an exception becomes {'raised': type, 'message': text}."""
    try:
        return fn(*a, **kw)
    except Exception as exc:  # noqa: BLE001 - we record what the client does
        return {"raised": type(exc).__name__, "message": getattr(exc, "message", str(exc))}


def jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def main():
    area, args = sys.argv[1], json.loads(sys.argv[2])
    os.chdir(args["workdir"])
    point_at(args["base"])
    import scenarios

    out = getattr(scenarios, area)(args, ac=ac, qc=qc, sc=sc, rc=rc, attempt=attempt)
    print(json.dumps(jsonable(out)))


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(3)
