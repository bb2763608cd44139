"""Issue 11, items 3 and 19: ADQL cannot burn the service's CPU, and runs only ADQL's functions.

The attacks: deeply nested parentheses (200 levels kept a core busy for 11 minutes, 1,000 gave a
500), a huge query, a query slow to translate within the depth limit, a pool of translators kept
busy, and function names queryparser passes through to PostgreSQL (pg_sleep, version, q3c_*).
Each gets its refusal: the status and a message, over TAP (a VOTable error document), over the
Data Lab API (`/query/query?adql=`, what qc.query(adql=) calls) and in-process.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import threading
import time
import xml.etree.ElementTree as ET

import httpx
import psutil
import pytest

from conftest import free_port, settings_env, start_service, until
from starbox import adql_translate
from starbox.accounts import ANONYMOUS
from starbox.errors import StarboxError, Unavailable
from starbox.tap import adql, examples

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
DEEP = "SELECT hip FROM hipparcos.main WHERE {}hip = 1{}"
# Eight levels (the limit) eight times over: legal, and seconds of queryparser's time.
SLOW = "SELECT hip FROM hipparcos.main WHERE " + " + ".join(["((((((((hip))))))))"] * 8) + " > 0"


@pytest.fixture(scope="module")
def tap(service):
    return service.url + "/tap"


def sync(tap, query):
    return httpx.post(f"{tap}/sync", data={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query}, timeout=60)


def error_document(r, status: int, *words) -> str:
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    info = ET.fromstring(r.content).find(f"{VOT}RESOURCE/{VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR", r.text
    for w in words:
        assert w in info.text, info.text
    return info.text


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def workers(proc_pid: int) -> set[int]:
    """The ADQL translator processes under a process."""
    try:
        children = psutil.Process(proc_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return set()
    return {c.pid for c in children if "starbox.adql_worker" in " ".join(c.cmdline())}


# -- size: refused before any parsing ---------------------------------------------------------------

@pytest.mark.system
@pytest.mark.parametrize("levels", [200, 1000])
def test_deep_parentheses_are_refused_at_once(tap, service, levels):
    q = DEEP.format("(" * levels, ")" * levels)
    t0 = time.perf_counter()
    error_document(sync(tap, q), 400, "nests parentheses more than 8 deep", "line 1, column 46")
    with service.client() as c:
        r = c.get("/query/query", params={"adql": q})
    assert r.status_code == 400 and "nests parentheses more than 8 deep" in r.text
    assert time.perf_counter() - t0 < 2


@pytest.mark.system
def test_depth_counts_only_real_parentheses(tap):
    """Parentheses in strings, quoted names and comments are text, not nesting."""
    q = ("SELECT TOP 1 hip AS \"((((((((((\" FROM hipparcos.main -- ((((((((((\n"
         "WHERE '" + "(" * 50 + "' <> 'x'")
    assert sync(tap, q).status_code == 200


@pytest.mark.system
def test_a_huge_query_is_refused_at_once(tap):
    q = "SELECT hip FROM hipparcos.main WHERE " + " OR ".join(["hip = 12345"] * 10_000)
    t0 = time.perf_counter()
    error_document(sync(tap, q), 400, f"{len(q)} characters long", "at most 100000")
    assert time.perf_counter() - t0 < 2


@pytest.mark.system
def test_the_dali_examples_are_within_the_limits(tap):
    for e in examples.EXAMPLES:
        adql_translate.check_size(e.query)  # the deepest is 3 levels
    r = httpx.get(f"{tap}/examples")
    assert r.status_code == 200


# -- time: a translation that runs too long is stopped, its worker replaced --------------------------

@pytest.mark.system
def test_slow_translation_is_stopped_and_the_worker_replaced(service):
    s = dataclasses.replace(service.settings, service_port=free_port())
    proc = start_service(s, STARBOX_ADQL_TRANSLATE_TIMEOUT="1", STARBOX_ADQL_TRANSLATE_WORKERS="1")
    base = f"{s.service_url}/tap"
    try:
        assert sync(base, "SELECT TOP 1 hip FROM hipparcos.main").status_code == 200
        before = workers(proc.pid)
        assert len(before) == 1
        t0 = time.perf_counter()
        error_document(sync(base, SLOW), 400, "took longer than 1 s and was stopped")
        assert time.perf_counter() - t0 < 10
        assert until(lambda: len(workers(proc.pid)) == 1 and workers(proc.pid) != before, 10)
        assert not any(alive(p) for p in before)
        r = sync(base, "SELECT TOP 2 hip FROM hipparcos.main ORDER BY hip")  # the new worker answers
        assert r.status_code == 200, r.text
        left = workers(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # the service stopped: no translator outlives it
    assert until(lambda: not any(alive(p) for p in left), 10)


@pytest.mark.api
def test_slow_translation_in_process(starbox):
    """The same limit where the translation runs in the caller's process (tests, in-process mode)."""
    s = dataclasses.replace(starbox, adql_translate_timeout=1)
    pool = adql_translate.pool(s)
    started = pool.started
    t0 = time.perf_counter()
    with pytest.raises(adql_translate.TranslationTimeout, match="took longer than 1 s") as err:
        adql_translate.translate(SLOW, s)
    assert err.value.status == 400 and time.perf_counter() - t0 < 15  # a fresh pool warms up first
    assert pool.started == started + 1  # killed, and a new one started
    assert adql_translate.translate("SELECT TOP 1 hip FROM hipparcos.main", s).startswith("SELECT hip")


@pytest.mark.unit
def test_busy_translators_refuse_with_retry_after():
    """Every worker busy: a caller waits a bounded time, then 503 with Retry-After; nothing stalls."""
    pool = adql_translate.Pool(1)
    pool.start()
    try:
        slow = threading.Thread(target=lambda: pytest.raises(StarboxError, pool.translate, SLOW, 3, 5))
        slow.start()
        time.sleep(0.5)
        t0 = time.perf_counter()
        with pytest.raises(Unavailable, match="busy") as err:
            pool.translate("SELECT 1 FROM t", 5, 0.5)
        assert time.perf_counter() - t0 < 1.5
        assert err.value.status == 503 and err.value.retry_after > 0
        slow.join()
        assert "sql" in pool.translate("SELECT 1 FROM t", 5, 5)
        pids = pool.pids()
    finally:
        pool.close()
    assert until(lambda: not any(alive(p) for p in pids), 5)


# -- once: a failing query costs one translation ------------------------------------------------------

@pytest.mark.api
@pytest.mark.parametrize("q", [
    "SELECT hip FROM hipparcos.main WHERE hpmag < 7.25 AND AND",
    "SELECT LOWER(name), 17 FROM openngc.objects WHERE messier > 3 AND AND",
    "WITH a AS (SELECT hip FROM hipparcos.main WHERE hpmag < 4.5)\nSELECT hip FROM a UNION\nSELECT hip FROM a WHERE",
])
def test_a_failing_query_is_translated_once(starbox, q):
    calls = adql_translate.calls
    with pytest.raises(adql_translate.AdqlSyntaxError) as first:
        adql.translate(q, ANONYMOUS)
    assert adql_translate.calls - calls <= q.count("SELECT")  # each SELECT once (queryparser takes one at a time)
    calls = adql_translate.calls
    with pytest.raises(adql_translate.AdqlSyntaxError) as again:
        adql.translate(q, ANONYMOUS)
    assert adql_translate.calls == calls and str(again.value) == str(first.value)  # remembered


@pytest.mark.api
def test_syntax_errors_point_into_the_users_text(starbox):
    """Positions map back through the numbers' templates and the rewrites, with no second parse."""
    with pytest.raises(StarboxError, match=r"line 1, column 66: near 'AND'"):
        adql.translate("SELECT LOWER(name), 17 FROM openngc.objects WHERE messier > 3 AND AND", ANONYMOUS)
    with pytest.raises(StarboxError, match=r"line 2, column 29: near '3'"):
        adql.translate("SELECT ra, 17.5 FROM hipparcos.main\nWHERE hpmag < -5 AND dec > 3 3", ANONYMOUS)


# -- functions: ADQL's, and nothing else ----------------------------------------------------------------

REFUSED = [
    ("SELECT TOP 1 pg_sleep(1) AS s FROM hipparcos.main", "pg_sleep()"),
    ("SELECT version() AS v FROM hipparcos.main", "version()"),
    ("SELECT TOP 1 q3c_ang2ipix(ra, dec) AS i FROM hipparcos.main", "q3c_ang2ipix()"),
    ("SELECT TOP 1 hip FROM hipparcos.main WHERE hip IN (SELECT hip FROM hipparcos.main WHERE pg_sleep(1) = 1)",
     "pg_sleep()"),
    ("SELECT TOP 1 hip FROM (SELECT hip, pg_sleep(1) AS s FROM hipparcos.main) AS t", "pg_sleep()"),
    ("SELECT TOP 1 h.hip FROM hipparcos.main AS h JOIN hipparcos.main AS g ON h.hip = g.hip + pg_sleep(1)",
     "pg_sleep()"),
    ("SELECT TOP 1 hip FROM hipparcos.main WHERE ABS(pg_sleep(1)) = 1", "pg_sleep()"),
    ("SELECT TOP 1 sbx__pg_sleep(1) AS s FROM hipparcos.main", "pg_sleep()"),  # the shim's names, restored
    ("SELECT TOP 1 LOWER(version()) AS v FROM hipparcos.main", "version()"),
    ("SELECT TOP 1 sbx__case_7() AS s FROM hipparcos.main", "sbx__case_7()"),  # the shim's own placeholders
    ("SELECT TOP 1 CASE WHEN hip > 1 THEN pg_sleep(1) END AS s FROM hipparcos.main", "pg_sleep()"),  # in a CASE
]


@pytest.mark.system
@pytest.mark.parametrize("q,name", REFUSED)
def test_functions_adql_does_not_have_are_refused(tap, service, q, name):
    error_document(sync(tap, q), 400, name, "is not an ADQL function")
    with service.client() as c:  # qc.query(adql=...)
        r = c.get("/query/query", params={"adql": q})
    # the same translator on both paths: the same refusal
    assert r.status_code == 400 and name in r.text and "is not an ADQL function" in r.text, r.text


@pytest.mark.system
def test_adql_functions_run(tap, service):
    q = ("SELECT TOP 3 hip, ABS(dec) AS a, LOWER('ABC') AS l, UPPER('abc') AS u, ROUND(hpmag, 1) AS r,"
         " SQRT(ABS(plx)) AS s, CAST(hip AS VARCHAR(10)) AS c,"
         " DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', 56.75, 24.12)) AS d"
         " FROM hipparcos.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 2))"
         " ORDER BY hip")
    r = sync(tap, q)
    assert r.status_code == 200, r.text
    with service.client() as c:
        r = c.get("/query/query", params={"adql": "SELECT TOP 2 hip, ABS(dec) AS a, COUNT(*) AS n FROM hipparcos.main "
                                                  "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 2)) "
                                                  "GROUP BY hip, dec ORDER BY hip"})
    assert r.status_code == 200 and r.text.startswith("hip,a,n\n"), r.text


@pytest.mark.system
def test_in_process_mode(service):
    """qc.query(adql=) in-process: translators in the caller's process, the same refusals, and none
    left when the process ends."""
    code = textwrap.dedent("""
        from starbox import adql_translate, inprocess, settings, queryClient as qc
        inprocess.start(settings.get())
        print(qc.query(adql="SELECT TOP 1 hip FROM hipparcos.main ORDER BY hip").splitlines()[1])
        try:
            qc.query(adql="SELECT TOP 1 pg_sleep(1) FROM hipparcos.main")
        except qc.queryClientError as exc:
            print(exc.message)
        print(*adql_translate.pool().pids())
    """)
    out = subprocess.run([sys.executable, "-c", code], env=settings_env(service.settings),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    first, refusal, pids = out.stdout.splitlines()[-3:]
    assert first == "1" and "pg_sleep() is not an ADQL function" in refusal
    assert pids and until(lambda: not any(alive(int(p)) for p in pids.split()), 5)
