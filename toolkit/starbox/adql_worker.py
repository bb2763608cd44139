"""One ADQL translator process (started by starbox.adql_translate, never by hand).

It reads one JSON request a line on stdin ({"adql": "..."}) and answers {"started": true} when it
begins, then {"sql": ...}, {"syntax": [[line, column, token], ...]} or {"error": "..."}. It imports
queryparser and nothing of the service, so it starts fast and holds no secrets or connections.
The parent kills it when a translation runs too long; it ends by itself when the parent is gone
(stdin closed, or the parent process replaced by init).
"""

import json
import os
import resource
import select
import sys
import threading
import time

MEMORY = 1 << 30  # bytes of address space a worker may use


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1)
        if os.getppid() != parent:  # the parent died (even by SIGKILL): no orphan keeps burning a core
            os._exit(0)


# Typical queries, translated while no request waits: ANTLR fills its caches on the first queries
# of a shape (a cold process takes 3-4 times longer), and a new worker should not spend its
# first request's time limit on that.
WARM_UP = [
    "SELECT TOP 10 hip, ra, dec FROM t WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 2))"
    " AND hpmag < 5 ORDER BY hpmag",
    "SELECT h.hip, COUNT(*) AS n, AVG(g.x) FROM a AS h JOIN b AS g ON h.id = g.id WHERE h.x BETWEEN 1 AND 2"
    " GROUP BY h.hip HAVING COUNT(*) > 1",
    "SELECT DISTANCE(POINT('ICRS', h.ra, h.dec), POINT('ICRS', g.ra, g.dec)) * 3600 AS sep FROM a AS h JOIN b AS g"
    " ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', h.ra, h.dec, 1.0 / 3600))",
    "SELECT name FROM o WHERE messier IS NOT NULL AND type_desc LIKE '%alaxy%' ORDER BY messier",
    "SELECT ra FROM t WHERE ABS(sharp) < 0.5 AND gmag - rmag BETWEEN -0.4 AND 0.4 AND fieldid = '169'",
]


def _translate(adql: str) -> dict:
    from queryparser.adql import ADQLQueryTranslator
    from queryparser.exceptions import QuerySyntaxError

    try:
        return {"sql": ADQLQueryTranslator(adql).to_postgresql()}
    except QuerySyntaxError as exc:
        return {"syntax": [[int(ln), int(col), str(tok)] for ln, col, tok in exc.syntax_errors[:3]]}
    except RecursionError:
        return {"error": "the query is nested too deeply"}
    except MemoryError:
        return {"error": "the query needs too much memory to translate"}
    except Exception as exc:  # noqa: BLE001 - queryparser raises bare exceptions for unsupported constructs
        return {"error": str(exc) or type(exc).__name__}


def main() -> None:
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # A parse tree that outgrows this is a MemoryError answered as a refusal, not a swapping machine.
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    import queryparser.adql  # noqa: F401 - the import is most of the start-up

    os.write(1, b'{"ready": true}\n')
    warm_up, buf = list(WARM_UP), b""
    while True:
        if b"\n" not in buf:
            if warm_up and not select.select([0], [], [], 0)[0]:
                _translate(warm_up.pop(0))
                continue
            chunk = os.read(0, 1 << 16)
            if not chunk:
                return  # the parent closed our stdin: done
            buf += chunk
            continue
        line, buf = buf.split(b"\n", 1)
        os.write(1, b'{"started": true}\n')  # the parent's clock starts now, not during a warm-up
        answer = _translate(json.loads(line)["adql"])
        out = (json.dumps(answer) + "\n").encode()
        while out:
            out = out[os.write(1, out) :]


if __name__ == "__main__":
    main()
