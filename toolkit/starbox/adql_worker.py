"""One ADQL translator process (started by starbox.adql_translate, never by hand).

It reads one JSON request a line on stdin ({"adql": "..."}) and answers one JSON line on stdout:
{"sql": ...}, {"syntax": [[line, column, token], ...]} or {"error": "..."}. It imports
queryparser and nothing of the service, so it starts fast and holds no secrets or connections.
The parent kills it when a translation runs too long; it ends by itself when the parent is gone
(stdin closed, or the parent process replaced by init).
"""

import json
import os
import resource
import sys
import threading
import time

MEMORY = 1 << 30  # bytes of address space a worker may use


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(1)
        if os.getppid() != parent:  # the parent died (even by SIGKILL): no orphan keeps burning a core
            os._exit(0)


def main() -> None:
    parent = int(sys.argv[1]) if len(sys.argv) > 1 else os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    # A parse tree that outgrows this is a MemoryError answered as a refusal, not a swapping machine.
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))
    from queryparser.adql import ADQLQueryTranslator
    from queryparser.exceptions import QuerySyntaxError

    out = sys.stdout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        try:
            adql = json.loads(line)["adql"]
            answer = {"sql": ADQLQueryTranslator(adql).to_postgresql()}
        except QuerySyntaxError as exc:
            answer = {"syntax": [[int(ln), int(col), str(tok)] for ln, col, tok in exc.syntax_errors[:3]]}
        except RecursionError:
            answer = {"error": "the query is nested too deeply"}
        except MemoryError:
            answer = {"error": "the query needs too much memory to translate"}
        except Exception as exc:  # noqa: BLE001 - queryparser raises bare exceptions for unsupported constructs
            answer = {"error": str(exc) or type(exc).__name__}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
