"""ADQL -> PostgreSQL with bounds: queryparser runs in worker processes, never in the service.

queryparser's ANTLR parser is pure Python and its cost grows steeply with nesting (4 levels of
parentheses 0.35 s, 12 levels 1.3 s, 20 levels 6 s, 200 levels many minutes; 1,000 levels blow
the stack). So, in order:

- size: a query longer than `adql_max_length` characters, or with parentheses nested deeper
  than `adql_max_depth` (outside strings and quoted names), is refused before any parsing;
- time: translation runs in a small pool of pre-started worker processes (starbox.adql_worker,
  which imports queryparser and nothing else); one that takes longer than
  `adql_translate_timeout` seconds is killed (a thread could not be) and replaced. When every
  worker is busy, a caller waits at most that long, then gets 503 with Retry-After;
- once: each text's outcome (SQL or refusal) is cached, so a repeated query costs nothing;
- functions: the translated SQL is parsed with PostgreSQL's own grammar (pglast) and every
  function call is checked against what ADQL has (check_functions): queryparser passes any
  function name through, and pg_sleep(), version() or q3c internals must not run from ADQL.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from contextvars import ContextVar

from starbox import settings as settings_mod
from starbox.errors import StarboxError, Unavailable

log = logging.getLogger(__name__)

START_TIMEOUT = 30  # s a new worker may take to import queryparser (or finish a warm-up query)
RETRY_AFTER_S = 5
CACHE_SIZE = 1024  # texts whose outcome is remembered,
CACHE_CHARS = 8_000_000  # and how much text they may hold together


class AdqlSyntaxError(StarboxError):
    """queryparser's syntax errors: (line, column, token), positions in the text it was given."""

    def __init__(self, errors: list[tuple[int, int, str]]):
        self.errors = errors
        where = ", ".join(f"line {line}, column {col}: near {tok!r}" for line, col, tok in errors[:3])
        super().__init__(f"Error: ADQL syntax error ({where})")


class TranslationFailed(StarboxError):
    """queryparser raised something other than a syntax error (unsupported constructs)."""


class TranslationTimeout(StarboxError):
    def __init__(self, timeout: float):
        super().__init__(
            f"Error: translating the ADQL query took longer than {timeout:g} s and was stopped; "
            "simplify the query (fewer nested parentheses or conditions)"
        )


# -- size -------------------------------------------------------------------------------------


def check_size(adql: str, settings=None) -> None:
    """Refuse a query longer than adql_max_length or nested deeper than adql_max_depth.
    Linear in the text: it runs before anything that parses."""
    s = settings or settings_mod.get()
    if len(adql) > s.adql_max_length:
        raise StarboxError(
            f"Error: the ADQL query is {len(adql)} characters long; at most {s.adql_max_length} are accepted"
        )
    depth = deepest = 0
    i, n = 0, len(adql)
    while i < n:
        c = adql[i]
        if c in "'\"":  # a string or a quoted name: '' and "" inside are the quote itself
            end = adql.find(c, i + 1)
            while end != -1 and end + 1 < n and adql[end + 1] == c:
                end = adql.find(c, end + 2)
            if end == -1:
                break  # unterminated: the parser says so
            i = end + 1
            continue
        if c == "-" and adql.startswith("--", i):
            end = adql.find("\n", i)
            i = n if end == -1 else end + 1
            continue
        if c == "/" and adql.startswith("/*", i):
            end = adql.find("*/", i + 2)
            i = n if end == -1 else end + 2
            continue
        if c == "(":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > s.adql_max_depth:
                    line = adql.count("\n", 0, i) + 1
                    col = i - (adql.rfind("\n", 0, i) + 1) + 1
                    raise StarboxError(
                        f"Error: the ADQL query nests parentheses more than {s.adql_max_depth} "
                        f"deep (at line {line}, column {col}); write it with fewer levels, "
                        "e.g. with a WITH clause"
                    )
        elif c == ")":
            depth -= 1
        i += 1


_size_checked: ContextVar[bool] = ContextVar("adql_size_checked", default=False)


@contextmanager
def size_checked():
    """Translations inside are of parts of a text check_size passed (starbox.tap.adql rewrites a
    query before translating it, which can make it longer or add a level of parentheses)."""
    token = _size_checked.set(True)
    try:
        yield
    finally:
        _size_checked.reset(token)


# -- the worker processes ------------------------------------------------------------------------


class _Worker:
    def __init__(self):
        env = dict(os.environ)
        # The worker finds starbox where this process found it (a worktree, a venv, the appliance).
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "starbox.adql_worker", str(os.getpid())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            cwd="/",
            close_fds=True,
            start_new_session=True,
        )
        self._buf = b""
        self.ready = False

    def _line(self, deadline: float) -> bytes | None:
        """The next line the worker writes, or None when the deadline passes first."""
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise EOFError("the ADQL translator ended")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def wait_ready(self) -> None:
        if not self.ready:
            line = self._line(time.monotonic() + START_TIMEOUT)
            if line is None or not json.loads(line).get("ready"):
                raise EOFError("the ADQL translator did not start")
            self.ready = True

    def ask(self, adql: str, timeout: float) -> dict | None:
        self.proc.stdin.write(json.dumps({"adql": adql}).encode() + b"\n")
        self.proc.stdin.flush()
        started = self._line(time.monotonic() + START_TIMEOUT)  # after the warm-up query it may be in
        if started is None or not json.loads(started).get("started"):
            raise EOFError("the ADQL translator does not answer")
        line = self._line(time.monotonic() + timeout)
        return None if line is None else json.loads(line)

    def kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass

    def stop(self) -> None:
        """Ask it to end (stdin closed), then make sure."""
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()


class Pool:
    """`size` translator processes; each call takes an idle one, or waits at most `wait` s."""

    def __init__(self, size: int):
        self.size = max(1, size)
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._cond = threading.Condition()
        self._closed = False
        self.started = 0  # how many workers were ever started (tests see a replacement)

    def _spawn(self) -> _Worker:
        w = _Worker()
        self.started += 1
        self._all.add(w)
        return w

    def start(self) -> None:
        with self._cond:
            while len(self._all) < self.size and not self._closed:
                self._idle.append(self._spawn())

    def _take(self, wait: float) -> _Worker:
        deadline = time.monotonic() + wait
        with self._cond:
            if self._closed:
                raise Unavailable("Error: the ADQL translator is shut down")
            while len(self._all) < self.size:
                self._idle.append(self._spawn())
            while not self._idle:
                left = deadline - time.monotonic()
                if left <= 0:
                    exc = Unavailable(
                        "Error: every ADQL translator is busy with other queries; try again in a few seconds"
                    )
                    exc.retry_after = RETRY_AFTER_S  # the service sends it as Retry-After
                    raise exc
                self._cond.wait(left)
            return self._idle.pop()

    def _give_back(self, w: _Worker, healthy: bool) -> None:
        with self._cond:
            if healthy and not self._closed:
                self._idle.append(w)
            else:
                self._all.discard(w)
                if not self._closed:
                    self._idle.append(self._spawn())  # the replacement starts importing now
            self._cond.notify()
        if not healthy:
            w.kill()

    def translate(self, adql: str, timeout: float, wait: float) -> dict:
        w = self._take(wait)
        healthy = False
        try:
            w.wait_ready()
            answer = w.ask(adql, timeout)
            healthy = answer is not None
        except (EOFError, OSError, ValueError) as exc:
            log.warning("ADQL translator failed: %s", exc)
            raise Unavailable("Error: the ADQL translator failed; try again") from None
        finally:
            self._give_back(w, healthy)
        if answer is None:
            raise TranslationTimeout(timeout)
        return answer

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._idle, self._all = list(self._all), [], set()
            self._cond.notify_all()
        for w in workers:
            w.stop()

    def pids(self) -> list[int]:
        with self._cond:
            return [w.proc.pid for w in self._all]


_pool: Pool | None = None
_pool_lock = threading.Lock()


def pool(settings=None) -> Pool:
    global _pool
    with _pool_lock:
        if _pool is None:
            s = settings or settings_mod.get()
            _pool = Pool(s.adql_translate_workers)
            _pool.start()
        return _pool


def shutdown() -> None:
    """End the worker processes (at exit, or when the service stops)."""
    global _pool
    with _pool_lock:
        p, _pool = _pool, None
    if p is not None:
        p.close()


atexit.register(shutdown)


# -- translation, once per text -----------------------------------------------------------------

_cache: "OrderedDict[str, dict]" = OrderedDict()
_cache_chars = 0
_cache_lock = threading.Lock()
calls = 0  # translations that reached a worker (tests count them)


def translate(adql: str, settings=None) -> str:
    """ADQL -> PostgreSQL (queryparser in a worker). Refusals raise StarboxError;
    syntax errors raise AdqlSyntaxError with positions in `adql`."""
    global calls, _cache_chars
    s = settings or settings_mod.get()
    if not _size_checked.get():
        check_size(adql, s)
    with _cache_lock:
        answer = _cache.get(adql)
        if answer is not None:
            _cache.move_to_end(adql)
    if answer is None:
        with _cache_lock:
            calls += 1
        # A timeout or a busy pool says as much about the machine's load as about the text: not cached.
        answer = pool(s).translate(adql, s.adql_translate_timeout, s.adql_translate_timeout)
        with _cache_lock:
            if adql not in _cache:
                _cache[adql] = answer
                _cache_chars += _chars(adql, answer)
            while len(_cache) > CACHE_SIZE or _cache_chars > CACHE_CHARS:
                _cache_chars -= _chars(*_cache.popitem(last=False))
    if "sql" in answer:
        return answer["sql"]
    if "syntax" in answer:
        raise AdqlSyntaxError([tuple(e) for e in answer["syntax"]])
    raise TranslationFailed(f"Error: cannot translate the ADQL query: {answer.get('error')}")


def _chars(adql: str, answer: dict) -> int:
    return len(adql) + sum(len(str(v)) for v in answer.values())


# -- what may run ---------------------------------------------------------------------------------

# ADQL 2.1's functions as queryparser writes them (LOG -> LN, LOG10 -> LOG, RAND -> random,
# TRUNCATE -> trunc), its aggregates, the string functions, and the pgsphere functions and the
# UDFs of db/006_tap.sql that queryparser's geometry becomes (CONTAINS, INTERSECTS and DISTANCE
# become pgsphere operators). geometry.py adds q3c calls after this check, on its own.
FUNCTIONS = frozenset(
    """
    abs ceiling ceil degrees exp floor ln log log10 mod pi power radians sqrt random rand round trunc
    truncate acos asin atan atan2 cos cot sin tan
    count sum avg min max
    lower upper char_length character_length octet_length
    spoint scircle sbox spoly area square_degrees coord1 coord2 coordsys centroid spoint_dwithin
    ivo_hasword ivo_healpix_index
""".split()
)
# CAST's target types (ADQL 2.1) and the pgsphere types; no casts to regclass & co.
TYPES = frozenset(
    """
    int2 int4 int8 smallint integer int bigint float4 float8 real numeric decimal
    varchar bpchar char character text timestamp timestamptz bool boolean
    spoint scircle sbox spoly
""".split()
)
SCHEMAS = (None, "pg_catalog", "public")
PLACEHOLDER = "sbx__"  # starbox.tap.adql's names for functions queryparser cannot parse


def _refused(what: str) -> StarboxError:
    return StarboxError(
        f"Error: {what} is not an ADQL function; ADQL queries may use ADQL's functions "
        "(mathematical, string, geometry) and the ones the TAP capabilities declare"
    )


def check_functions(sql: str, placeholders: bool = False) -> None:
    """Refuse the SQL when it calls a function ADQL does not have. `placeholders`: let the
    names starbox.tap.adql gives hidden functions pass (they are checked again, restored)."""
    import pglast
    from pglast import enums
    from pglast.visitors import Visitor

    try:
        tree = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        raise StarboxError(f"Error: the translated ADQL query is not valid SQL: {exc}") from None

    def name_of(parts) -> tuple[str | None, str]:
        names = [getattr(p, "sval", "") or "" for p in parts]
        return (names[-2].lower() if len(names) > 1 else None), names[-1].lower()

    class Check(Visitor):
        def visit_FuncCall(self, parent, node):
            schema, name = name_of(node.funcname)
            if placeholders and schema is None and name.startswith(PLACEHOLDER):
                rest = name[len(PLACEHOLDER) :]
                if rest in FUNCTIONS | {"coalesce", "nullif"} or (
                    rest[:5] in ("cast_", "case_") and rest[5:].isdigit()
                ):
                    return
            if schema not in SCHEMAS or name not in FUNCTIONS:
                raise _refused(f"{'.'.join(p.sval for p in node.funcname)}()")

        def visit_TypeCast(self, parent, node):
            schema, name = name_of(node.typeName.names)
            if schema not in SCHEMAS or name not in TYPES:
                raise StarboxError(
                    f"Error: CAST to {'.'.join(p.sval for p in node.typeName.names)} is not "
                    "supported in ADQL; use SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, "
                    "CHAR(n), VARCHAR(n) or TIMESTAMP"
                )

        def visit_SQLValueFunction(self, parent, node):
            op = enums.SQLValueFunctionOp(node.op).name.removeprefix("SVFOP_").lower()
            raise _refused(op)

    Check()(tree)
