"""TAP 1.1, UWS 1.1, VOSI and cone search against the live service, with pyvo and plain HTTP.

taplint has its own file (test_taplint.py). Spatial predicates are checked with EXPLAIN on the
SQL that the service would run; the restart test runs a second service process of its own.
"""

from __future__ import annotations

import dataclasses
import io
import time
import warnings
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pytest

pyvo = pytest.importorskip("pyvo")

from astropy.io.votable import parse_single_table  # noqa: E402
from astropy.table import Table  # noqa: E402

VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
# A query that is slow in ADQL's own terms: n Hipparcos stars times all of them, counted.
SLOW_JOIN = "SELECT COUNT(*) AS n FROM hipparcos.main AS a, hipparcos.main AS b WHERE a.hip < {n}"
CONE = ("SELECT hip, ra, dec, plx, hpmag, b_v FROM hipparcos.main "
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 2))")


@pytest.fixture(scope="module")
def tap(service):
    return service.url + "/tap"


@pytest.fixture(scope="module", autouse=True)
def scratch_schema(starbox):
    """tap_test holds the tables some tests make as the superuser; it goes at the end."""
    from starbox import database

    yield
    with database.connect_admin(starbox) as conn:
        conn.execute("DROP SCHEMA IF EXISTS tap_test CASCADE")


@pytest.fixture(scope="module")
def users(service):
    """Two accounts with a MyDB table each (made through the Data Lab API)."""
    tokens = {name: service.add_user(name) for name in ("tap_alice", "tap_bob")}
    with service.client(tokens["tap_alice"]) as c:
        r = c.get("/query/query", params={"sql": "SELECT hip, ra, dec FROM hipparcos.main ORDER BY hip LIMIT 7",
                                          "out": "mydb://stars", "drop": "True"})
        assert r.status_code == 200, r.text
    return tokens


def session(token: str | None = None):
    import requests

    s = requests.Session()
    if token:
        s.headers["Authorization"] = f"Bearer {token}"
    return s


def sync(tap, query, token=None, method="POST", **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = {"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": query, **params}
    if method == "GET":
        return httpx.get(f"{tap}/sync", params=data, headers=headers, timeout=60)
    return httpx.post(f"{tap}/sync", data=data, headers=headers, timeout=60)


def status_of(content: bytes) -> tuple[str | None, str | None, bool]:
    """(QUERY_STATUS before the table, status after it, whether the table came first)."""
    root = ET.fromstring(content)
    resource = root.find(f"{VOT}RESOURCE")
    seen_table, before, after = False, None, None
    for el in resource:
        if el.tag == f"{VOT}TABLE":
            seen_table = True
        elif el.tag == f"{VOT}INFO" and el.get("name") == "QUERY_STATUS":
            if seen_table:
                after = el.get("value")
            else:
                before = el.get("value")
    return before, after, seen_table


def assert_error_document(r, status: int, *words):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/x-votable+xml")
    root = ET.fromstring(r.content)
    info = root.find(f"{VOT}RESOURCE/{VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR", r.text
    assert "Traceback" not in r.text
    for w in words:
        assert w in info.text, info.text
    return info.text


# -- sync queries ---------------------------------------------------------------------------------

@pytest.mark.system
def test_pyvo_search_carries_units_and_ucds(tap):
    svc = pyvo.dal.TAPService(tap, session=session())
    result = svc.search(CONE + " ORDER BY hpmag")
    table = result.to_table()
    assert len(table) > 50 and table["hpmag"][0] < 3  # Alcyone is first
    assert str(table["ra"].unit) == "deg" and str(table["plx"].unit) == "mas" and str(table["hpmag"].unit) == "mag"
    ucds = {f.name: f.ucd for f in result.fielddescs}
    assert ucds["ra"] == "pos.eq.ra;meta.main" and ucds["hip"] == "meta.id;meta.main"
    assert ucds["b_v"] == "phot.color;em.opt.B;em.opt.V"
    assert result.fieldname_with_ucd("phot.mag;em.opt") == "hpmag"


@pytest.mark.system
def test_binary2_is_the_default_and_tabledata_on_request(tap):
    r = sync(tap, "SELECT TOP 3 hip, ra, hpmag FROM hipparcos.main ORDER BY hip")
    assert r.status_code == 200 and b"<BINARY2>" in r.content
    assert status_of(r.content) == ("OK", None, True)
    td = sync(tap, "SELECT TOP 3 hip, ra, hpmag FROM hipparcos.main ORDER BY hip", FORMAT="votable/td")
    assert b"<TABLEDATA>" in td.content
    a, b = (parse_single_table(io.BytesIO(x.content)).to_table() for x in (r, td))
    assert list(a["hip"]) == list(b["hip"]) and np.allclose(a["ra"], b["ra"])
    assert np.allclose(a["hpmag"], b["hpmag"])


@pytest.mark.system
def test_binary2_nulls_booleans_strings_and_aliases(tap, admin):
    admin.execute("DROP SCHEMA IF EXISTS tap_test CASCADE")
    admin.execute("CREATE SCHEMA tap_test")
    admin.execute("CREATE TABLE tap_test.mixed (i integer, s smallint, b bigint, f real, d double precision, "
                  "flag boolean, name text, t timestamp)")
    admin.execute("INSERT INTO tap_test.mixed VALUES (1, 2, 3, 1.5, 2.25, true, 'Alcyone', '2020-01-02 03:04:05'),"
                  " (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), (7, 8, 9, -1, 'NaN', false, 'x,y \"z\"', NULL)")
    admin.execute("GRANT USAGE ON SCHEMA tap_test TO starbox_public")
    admin.execute("GRANT SELECT ON ALL TABLES IN SCHEMA tap_test TO starbox_public")
    for fmt in ("votable", "votable/td"):
        r = sync(tap, "SELECT i AS ii, s, b, f, d, flag, name, t FROM tap_test.mixed ORDER BY i", FORMAT=fmt)
        assert r.status_code == 200, r.text
        t = parse_single_table(io.BytesIO(r.content)).to_table()
        assert t.colnames == ["ii", "s", "b", "f", "d", "flag", "name", "t"]
        assert list(t["ii"][:2]) == [1, 7] and t["ii"].mask[2]
        assert t["flag"][0] and not t["flag"][1] and t["name"][1] == 'x,y "z"'
        assert np.ma.getmaskarray(t["name"])[2] or t["name"][2] == ""  # astropy reads a null char as empty
        assert t["t"][0].startswith("2020-01-02T03:04:05")
        assert np.ma.getmaskarray(t["d"])[1] or np.isnan(np.ma.getdata(t["d"])[1])  # NaN is null in VOTable
        assert t["f"][0] == 1.5


@pytest.mark.system
@pytest.mark.parametrize("fmt", ["csv", "tsv", "fits", "parquet"])
def test_other_formats(tap, fmt):
    r = sync(tap, "SELECT TOP 5 hip, ra, dec, hpmag FROM hipparcos.main ORDER BY hip", method="GET", RESPONSEFORMAT=fmt)
    assert r.status_code == 200, r.text
    if fmt in ("csv", "tsv"):
        lines = r.text.splitlines()
        assert lines[0] == ("hip,ra,dec,hpmag" if fmt == "csv" else "hip\tra\tdec\thpmag") and len(lines) == 6
        return
    if fmt == "fits":
        t = Table.read(io.BytesIO(r.content), format="fits")
        assert str(t["ra"].unit) == "deg" and t.meta["QUERY_ST"] == "OK"
    else:
        import pyarrow.parquet as pq

        pt = pq.read_table(io.BytesIO(r.content))
        assert pt.schema.field("ra").metadata[b"unit"] == b"deg"
        assert pq.read_metadata(io.BytesIO(r.content)).metadata[b"QUERY_STATUS"] == b"OK"
        t = pt.to_pandas()
    assert len(t) == 5 and list(t["hip"]) == sorted(t["hip"])


@pytest.mark.system
def test_maxrec_overflow_is_marked_never_silent(tap):
    r = sync(tap, CONE, MAXREC="5")
    before, after, _ = status_of(r.content)
    assert (before, after) == ("OK", "OVERFLOW")
    assert len(parse_single_table(io.BytesIO(r.content)).array) == 5
    exact = sync(tap, "SELECT TOP 5 hip FROM hipparcos.main", MAXREC="5")  # exactly MAXREC rows: no overflow
    assert status_of(exact.content)[1] is None
    for fmt, key in (("parquet", b"QUERY_STATUS"), ("fits", None)):
        r = sync(tap, CONE, MAXREC="5", FORMAT=fmt)
        if key:
            import pyarrow.parquet as pq

            pt = pq.read_table(io.BytesIO(r.content))
            assert pt.num_rows == 5 and pq.read_metadata(io.BytesIO(r.content)).metadata[key] == b"OVERFLOW"
        else:
            t = Table.read(io.BytesIO(r.content), format="fits")
            assert len(t) == 5 and t.meta["QUERY_ST"] == "OVERFLOW"
    svc = pyvo.dal.TAPService(tap, session=session())
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        res = svc.search(CONE, maxrec=3)
    assert len(res) == 3 and res.status[0] == "OVERFLOW"
    meta = sync(tap, CONE, MAXREC="0")  # MAXREC=0: the columns only
    t = parse_single_table(io.BytesIO(meta.content))
    assert len(t.array) == 0 and [f.name for f in t.fields][:2] == ["hip", "ra"]


@pytest.mark.system
def test_default_and_hard_maxrec(tap, service):
    cap = httpx.get(f"{tap}/capabilities").text
    s = service.settings
    assert f'<default unit="row">{s.tap_maxrec}</default>' in cap and f'<hard unit="row">{s.tap_maxrec_max}</hard>' in cap
    r = sync(tap, "SELECT TOP 1 hip FROM hipparcos.main", MAXREC=str(10 * s.tap_maxrec_max))
    assert r.status_code == 200 and f'name="MAXREC" value="{s.tap_maxrec_max}"'.encode() in r.content


# -- errors ---------------------------------------------------------------------------------------

@pytest.mark.system
def test_bad_adql_gets_an_error_document_that_says_what_and_where(tap):
    msg = assert_error_document(sync(tap, "SELECT ra FROM hipparcos.main WHERE"), 400, "ADQL syntax error")
    assert "line 1, column" in msg
    msg = assert_error_document(sync(tap, "SELECT ra\nFROM hipparcos.mian"), 400, "hipparcos.mian", "does not exist")
    assert "line 2, column 6" in msg
    assert_error_document(sync(tap, "SELECT rra FROM hipparcos.main"), 400, '"rra" does not exist', "line 1, column 8")
    assert_error_document(sync(tap, "SELECT 1 FROM x", FORMAT="xlsx"), 400, "FORMAT")
    assert_error_document(sync(tap, "SELECT 1 FROM x", MAXREC="many"), 400, "MAXREC")
    assert_error_document(sync(tap, "SELECT 1 FROM x", LANG="SQL"), 400, "LANG")
    assert_error_document(sync(tap, "  "), 400, "QUERY")
    assert_error_document(sync(tap, "SELECT hip FROM hipparcos.main", REQUEST="getCapabilities"), 400, "REQUEST")
    assert_error_document(sync(tap, "SELECT 1 FROM x", token="nobody.1.1.nothing"), 401, "token")
    svc = pyvo.dal.TAPService(tap, session=session())
    with pytest.raises(pyvo.dal.DALQueryError, match="syntax error"):
        svc.search("SELEC ra FROM hipparcos.main")


@pytest.mark.system
def test_refusals_elsewhere_are_documents_too(tap):
    assert_error_document(httpx.get(f"{tap}/async/nosuchjob"), 404, "no job")
    assert_error_document(httpx.get(f"{tap}/async/nosuchjob/phase"), 404, "no job")
    assert_error_document(httpx.get(f"{tap}/tables/no.table"), 404, "no table")
    assert_error_document(httpx.post(f"{tap}/async", content=b"\x00\xff", headers={"content-type": "application/json"}),
                          400, "body")
    r = httpx.post(f"{tap}/async", data={"QUERY": "SELECT 1 FROM x", "UPLOAD": "t,param:missing"})
    assert_error_document(r, 400, "no multipart part")
    assert_error_document(httpx.post(f"{tap}/sync", data={"QUERY": "SELECT 1 FROM x", "UPLOAD": "t,ftp://x"}), 400, "UPLOAD")


# -- ADQL ---------------------------------------------------------------------------------------

@pytest.mark.system
@pytest.mark.parametrize("adql,check", [
    ("SELECT TOP 3 hip FROM hipparcos.main ORDER BY hip OFFSET 2", lambda t: list(t["hip"]) == [3, 4, 5]),
    ("SELECT TOP 2 name FROM openngc.objects WHERE name ILIKE 'ngc0224'", lambda t: list(t["name"]) == ["NGC0224"]),
    ("SELECT TOP 1 LOWER(name) AS l, UPPER(LOWER(name)) AS u FROM openngc.objects WHERE name = 'NGC0224'",
     lambda t: (t["l"][0], t["u"][0]) == ("ngc0224", "NGC0224")),
    ("SELECT TOP 1 ABS(-2) AS a, SQRT(16.0) AS s, LOG10(100.0) AS l10, LOG(EXP(1.0)) AS ln, POWER(2, 10) AS p, "
     "ROUND(ra, 2) AS r, TRUNCATE(2.7) AS tr, MOD(7, 3) AS m, PI() AS p_i, FLOOR(2.5) AS fl, CEILING(2.5) AS ce "
     "FROM hipparcos.main WHERE hip = 1",
     lambda t: (t["a"][0], t["s"][0], t["l10"][0], round(t["ln"][0], 9), t["p"][0], t["tr"][0], t["m"][0],
                t["fl"][0], t["ce"][0]) == (2, 4, 2, 1, 1024, 2, 1, 2, 3) and abs(t["p_i"][0] - np.pi) < 1e-12),
    ("SELECT TOP 1 CAST(hip AS DOUBLE PRECISION) / 2 AS half, COALESCE(NULL, hip) AS c, 0x1F AS h "
     "FROM hipparcos.main WHERE hip = 1", lambda t: (t["half"][0], t["c"][0], t["h"][0]) == (0.5, 1, 31)),
    ("SELECT COUNT(*) AS n FROM hipparcos.main -- a comment\nWHERE hpmag < 3", lambda t: t["n"][0] > 10),
    ("SELECT TOP 1 COORD1(POINT('ICRS', ra, dec)) AS c1, COORD2(POINT('ICRS', ra, dec)) AS c2, ra, dec, "
     "DISTANCE(POINT('ICRS', ra, dec), POINT('ICRS', ra, dec + 1)), AREA(CIRCLE('ICRS', ra, dec, 1)) AS a "
     "FROM hipparcos.main WHERE hip = 1",
     lambda t: abs(t["c1"][0] - t["ra"][0]) < 1e-9 and abs(t["c2"][0] - t["dec"][0]) < 1e-9
     and abs(t["distance"][0] - 1) < 1e-9 and str(t["distance"].unit) == "deg" and abs(t["a"][0] - np.pi) < 1e-3),
    ("SELECT COUNT(*) AS n FROM hipparcos.main WHERE 1 = CONTAINS(POINT(ra, dec), CIRCLE(56.75, 24.12, 2))",
     lambda t: t["n"][0] > 50),
    ("SELECT COUNT(*) AS n FROM hipparcos.main WHERE 1 = INTERSECTS(POINT('ICRS', ra, dec), "
     "POLYGON(POINT(55, 23), POINT(58, 23), POINT(58, 25), POINT(55, 25)))", lambda t: t["n"][0] > 20),
    ("SELECT COUNT(*) AS n FROM hipparcos.main WHERE DISTANCE(ra, dec, 56.75, 24.12) < 2", lambda t: t["n"][0] > 50),
])
def test_adql_features(tap, adql, check):
    r = sync(tap, adql)
    assert r.status_code == 200, r.text
    table = parse_single_table(io.BytesIO(r.content)).to_table()
    assert check(table), table


@pytest.mark.system
@pytest.mark.parametrize("adql,expect", [
    # ADQL 2.1 set operators: TOP applies to each SELECT, ORDER BY and OFFSET after the last to all
    ("(SELECT TOP 2 hip FROM hipparcos.main WHERE hip < 100 ORDER BY hip) UNION "
     "(SELECT TOP 2 hip FROM hipparcos.main WHERE hip > 100 ORDER BY hip) ORDER BY hip DESC", [102, 101, 2, 1]),
    ("SELECT hip FROM hipparcos.main WHERE hip <= 4 UNION ALL SELECT hip FROM hipparcos.main WHERE hip <= 2 "
     "ORDER BY 1", [1, 1, 2, 2, 3, 4]),
    ("(SELECT hip FROM hipparcos.main WHERE hip <= 6) EXCEPT (SELECT hip FROM hipparcos.main WHERE hip <= 3) "
     "ORDER BY hip OFFSET 1", [5, 6]),
    ("SELECT hip FROM hipparcos.main WHERE hip <= 5 INTERSECT SELECT hip FROM hipparcos.main "
     "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 0.0, 0.0, 89)) AND hip >= 4 ORDER BY hip", [4, 5]),
    # ADQL 2.1 common table expressions
    ("WITH bright(id, mag) AS (SELECT TOP 5 hip, hpmag FROM hipparcos.main ORDER BY hpmag), "
     "lowest AS (SELECT TOP 2 id FROM bright ORDER BY id) "
     "SELECT b.id FROM bright AS b JOIN lowest AS f ON f.id = b.id ORDER BY b.id", None),
])
def test_adql_sets_and_common_tables(tap, admin, adql, expect):
    r = sync(tap, adql)
    assert r.status_code == 200 and status_of(r.content)[0] == "OK", r.text
    got = [int(row[0]) for row in parse_single_table(io.BytesIO(r.content)).array]
    if expect is None:  # the two brightest-five stars with the lowest numbers, from the database itself
        rows = admin.execute("SELECT hip FROM (SELECT hip FROM hipparcos.main ORDER BY hpmag LIMIT 5) b "
                             "ORDER BY hip LIMIT 2").fetchall()
        expect = [row[0] for row in rows]
    assert got == expect


@pytest.mark.system
def test_adql_sets_and_common_tables_refusals(tap):
    assert_error_document(sync(tap, "SELECT hip FROM hipparcos.main UNION"), 400, "a SELECT must follow UNION")
    # the parser's place is in the user's text, not in the part of it that was translated
    assert_error_document(sync(tap, "WITH a AS (SELECT hip FROM hipparcos.main)\nSELECT hip FROM a UNION\n"
                                    "SELECT hip FROM a WHERE"), 400, "line 3, column")
    assert_error_document(sync(tap, "WITH x AS SELECT 1"), 400, "WITH needs name AS (SELECT ...)")
    assert_error_document(sync(tap, "WITH RECURSIVE x AS (SELECT 1) SELECT * FROM x"), 400, "not part of ADQL")
    assert_error_document(sync(tap, "SELECT hip FROM hipparcos.main UNION SELECT hip FROM hipparcos.main "
                                    "ORDER BY hpmag * 2"), 400, "ORDER BY takes output column names")
    assert_error_document(sync(tap, "SELECT hip, ra FROM hipparcos.main UNION SELECT hip FROM hipparcos.main"),
                          400, "same number of columns")


@pytest.mark.system
def test_upload_with_a_common_table(tap):
    mine = Table({"name": ["Pleiades", "Orion"], "ra": [56.75, 83.82], "dec": [24.12, -5.39]})
    svc = pyvo.dal.TAPService(tap, session=session())
    q = ("WITH near AS (SELECT u.name, h.hip FROM TAP_UPLOAD.mine AS u JOIN hipparcos.main AS h "
         "ON 1 = CONTAINS(POINT('ICRS', h.ra, h.dec), CIRCLE('ICRS', u.ra, u.dec, 0.5))) "
         "SELECT name, COUNT(*) AS n FROM near GROUP BY name ORDER BY name")
    t = svc.search(q, uploads={"mine": mine}).to_table()
    assert list(t["name"]) == ["Orion", "Pleiades"] and all(t["n"] > 3)


@pytest.mark.system
@pytest.mark.parametrize("fmt", ["votable", "votable/td"])
def test_geometry_values_are_dali_xtypes(tap, fmt):
    r = sync(tap, "SELECT TOP 1 POINT('ICRS', ra, dec) AS p, CIRCLE('ICRS', ra, dec, 0.5) AS c, "
                  "POLYGON('ICRS', 10, 20, 11, 20, 11, 21) AS poly, ra, dec FROM hipparcos.main WHERE hip = 2",
             FORMAT=fmt)
    table = parse_single_table(io.BytesIO(r.content))
    xtypes = {f.name: (f.xtype, f.arraysize, str(f.unit)) for f in table.fields}
    assert xtypes["p"] == ("point", "2", "deg") and xtypes["c"] == ("circle", "3", "deg")
    assert xtypes["poly"] == ("polygon", "*", "deg")
    row = table.array[0]
    assert np.allclose(row["p"], [row["ra"], row["dec"]]) and np.allclose(row["c"], [row["ra"], row["dec"], 0.5])
    assert np.allclose(row["poly"], [10, 20, 11, 20, 11, 21])


@pytest.mark.system
def test_repeated_query_shapes_skip_the_parser(tap):
    from starbox.accounts import ANONYMOUS
    from starbox.tap import adql

    cone = "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {}, {}, {}))"
    first, _ = adql.translate(cone.format(56.75, 24.12, 0.5), ANONYMOUS)
    t0 = time.perf_counter()
    second, _ = adql.translate(cone.format(83.8, -5.4, 2.0), ANONYMOUS)
    assert time.perf_counter() - t0 < 0.025  # the ANTLR parser takes 50 ms or more
    assert "RADIANS(56.75)" in first and "RADIANS(83.8)" in second and "RADIANS(-5.4)" in second
    box = "SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', {}, 20, 2, 2))"
    assert "RADIANS(9.0)" in adql.translate(box.format(10), ANONYMOUS)[0]  # BOX computes: parsed anew
    assert "RADIANS(10.0)" in adql.translate(box.format(11), ANONYMOUS)[0]


@pytest.mark.system
def test_mydb_tables_under_a_token(tap, users):
    alice, bob = users["tap_alice"], users["tap_bob"]
    for q in ("SELECT COUNT(*) AS n FROM mydb.stars", "SELECT COUNT(*) AS n FROM mydb_tap_alice.stars",
              "SELECT COUNT(*) AS n FROM mydb://stars"):
        r = sync(tap, q, token=alice)
        assert r.status_code == 200, r.text
        assert parse_single_table(io.BytesIO(r.content)).array["n"][0] == 7
    svc = pyvo.dal.TAPService(tap, session=session(alice))
    t = svc.search("SELECT s.hip, h.hpmag FROM mydb.stars AS s JOIN hipparcos.main AS h ON h.hip = s.hip").to_table()
    assert len(t) == 7 and str(t["hpmag"].unit) == "mag"
    assert_error_document(sync(tap, "SELECT * FROM mydb.stars"), 401, "logged-in")
    assert_error_document(sync(tap, "SELECT * FROM mydb_tap_alice.stars", token=bob), 403, "permission denied")
    assert_error_document(sync(tap, "SELECT * FROM mydb.stars", token=bob), 400, "does not exist")


SAME_ON_BOTH_PATHS = [
    "SELECT TOP 3 hip, CAST(hpmag AS INTEGER) AS m FROM hipparcos.main ORDER BY hip",
    "SELECT TOP 2 LOWER(name) AS n, UPPER(const) AS c FROM openngc.objects WHERE messier = '031' OR messier = '042' "
    "ORDER BY n",
    "SELECT hip FROM hipparcos.main WHERE hip < 5 UNION SELECT hip FROM hipparcos.main WHERE hip BETWEEN 100 AND 102 "
    "ORDER BY hip",
    "WITH b AS (SELECT hip, hpmag FROM hipparcos.main WHERE hpmag < 1) SELECT COUNT(*) AS n FROM b",
    CONE + " ORDER BY hip",
    "SELECT s.hip, h.hpmag FROM mydb.stars AS s JOIN hipparcos.main AS h ON h.hip = s.hip ORDER BY s.hip",
    "SELECT TOP 4 hip, CASE WHEN hpmag < 0 THEN 'brilliant' WHEN hpmag < 1 THEN 'bright' ELSE 'fainter' END AS k "
    "FROM hipparcos.main ORDER BY hpmag",
]


@pytest.mark.system
@pytest.mark.parametrize("adql", SAME_ON_BOTH_PATHS)
def test_the_same_adql_gives_the_same_rows_through_the_data_lab_api_and_tap(tap, users, adql):
    """qc.query(adql=...) goes through TAP's translator: WITH, set operators, CAST, LOWER and the
    index rewrites work there too, with the same rows."""
    import pandas as pd

    alice = users["tap_alice"]
    via_tap = sync(tap, adql, token=alice, FORMAT="csv")
    assert via_tap.status_code == 200, via_tap.text
    with httpx.Client(base_url=tap.removesuffix("/tap"), headers={"X-DL-AuthToken": alice}, timeout=60) as c:
        via_dl = c.get("/query/query", params={"adql": adql, "ofmt": "csv"})
    assert via_dl.status_code == 200, via_dl.text
    a, b = pd.read_csv(io.StringIO(via_tap.text)), pd.read_csv(io.StringIO(via_dl.text))
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)


def _rows(r) -> list[tuple]:
    assert r.status_code == 200, r.text
    return [tuple(row) for row in parse_single_table(io.BytesIO(r.content)).array.tolist()]


@pytest.mark.system
def test_adql_21_case_and_bitwise_operators(tap):
    rows = _rows(sync(tap, "SELECT TOP 3 hip, CASE WHEN hpmag < 0 THEN 'brilliant' "
                           "WHEN hpmag < 1 THEN CASE WHEN b_v > 1 THEN 'bright, red' ELSE 'bright' END "
                           "ELSE 'fainter' END AS kind FROM hipparcos.main ORDER BY hpmag"))
    assert [r[1] for r in rows] == ["brilliant", "brilliant", "bright"]  # Sirius, Canopus, Arcturus
    rows = _rows(sync(tap, "SELECT COUNT(*) AS n FROM hipparcos.main "
                           "WHERE CASE WHEN hpmag < 1 THEN 1 ELSE 0 END = 1"))
    assert rows[0][0] == _rows(sync(tap, "SELECT COUNT(*) FROM hipparcos.main WHERE hpmag < 1"))[0][0]
    h = 32349
    rows = _rows(sync(tap, f"SELECT hip & 6 AS a, hip | 8 AS o, hip ^ 5 AS x, ~hip AS n FROM hipparcos.main "
                           f"WHERE hip = {h}"))
    assert rows == [(h & 6, h | 8, h ^ 5, ~h)]
    # inside a CASE too (hidden from queryparser whole): ^ is XOR, 0x10 is 16, comments go
    rows = _rows(sync(tap, f"SELECT CASE WHEN hip ^ 5 = {h ^ 5} /* xor */ THEN hip & 0x10 ELSE -1 END AS c "
                           f"FROM hipparcos.main WHERE hip = {h}"))
    assert rows == [(h & 16,)]
    assert_error_document(sync(tap, "SELECT CASE WHEN hip > 1 THEN 1 FROM hipparcos.main"), 400, "CASE without its END")


@pytest.mark.system
def test_adql_21_in_unit_converts_a_catalog_column_by_its_tap_schema_unit(tap):
    rows = _rows(sync(tap, "SELECT TOP 3 h.plx, IN_UNIT(h.plx, 'arcsec') AS p, IN_UNIT(pmra, 'arcsec/yr') AS pm, "
                           "pmra, IN_UNIT(ra, 'rad') AS r, ra FROM hipparcos.main AS h "
                           "WHERE IN_UNIT(plx, 'arcsec') > 0.1 ORDER BY plx DESC"))
    assert len(rows) == 3
    for plx, p, pm, pmra, r, ra in rows:
        assert p == pytest.approx(plx / 1000) and p > 0.1
        assert pm == pytest.approx(pmra / 1000)
        assert r == pytest.approx(np.radians(ra))
    for adql, message in [
        ("SELECT IN_UNIT(plx, 'Jy') FROM hipparcos.main", "mas cannot be converted to Jy"),
        ("SELECT IN_UNIT(plx, 'furlongs per hogshead') FROM hipparcos.main", "is not a unit"),
        ("SELECT IN_UNIT(hip, 'deg') FROM hipparcos.main", "the unit of hip is not known"),
        ("SELECT IN_UNIT(plx * 2, 'arcsec') FROM hipparcos.main", "takes a column"),
        ("SELECT IN_UNIT(plx, arcsec) FROM hipparcos.main", "the unit as a string"),
    ]:
        assert_error_document(sync(tap, adql), 400, message)
    caps = httpx.get(f"{tap}/capabilities", timeout=30).text
    assert "features-adql-unit" in caps and "IN_UNIT" in caps


@pytest.mark.system
def test_ivo_udfs_hasword_and_healpix_index(tap):
    import astropy.units as u
    from astropy_healpix import HEALPix

    names = {r[0] for r in _rows(sync(
        tap, "SELECT name FROM openngc.objects WHERE 1 = ivo_hasword(commonnames, 'Orion NEBULA')"))}
    assert "NGC1976" in names
    assert not _rows(sync(tap, "SELECT name FROM openngc.objects WHERE 1 = ivo_hasword(commonnames, 'orio')"))
    edges = [(0.0, 90.0), (0.0, -90.0), (359.9999, 0.0), (45.0, 41.8103), (180.0, -41.8103), (270.0, -60.0)]
    for order in (0, 3, 10, 29):
        got = _rows(sync(tap, f"SELECT ra, dec, ivo_healpix_index({order}, ra, dec) AS h FROM hipparcos.main "
                              "WHERE MOD(hip, 600) = 7"))
        for ra, dec in edges:  # the poles, the seams of the projection, a polar cap
            got += [(ra, dec, _rows(sync(tap, f"SELECT ivo_healpix_index({order}, {ra}, {dec}) AS h "
                                              "FROM hipparcos.main WHERE hip = 1"))[0][0])]
        want = HEALPix(nside=2**order, order="nested").lonlat_to_healpix(
            [g[0] for g in got] * u.deg, [g[1] for g in got] * u.deg)
        assert len(got) > 150 and [g[2] for g in got] == list(want), order
    point = _rows(sync(tap, "SELECT ivo_healpix_index(10, POINT('ICRS', ra, dec)) AS h, "
                            "ivo_healpix_index(10, ra, dec) AS k FROM hipparcos.main WHERE hip = 32349"))
    assert point[0][0] == point[0][1] == 5360653
    assert_error_document(sync(tap, "SELECT ivo_healpix_index(30, ra, dec) FROM hipparcos.main"), 400, "0 to 29")


@pytest.mark.system
def test_capabilities_declare_the_adql_21_features_and_udfs(tap):
    svc = pyvo.dal.TAPService(tap, session=session())
    tapcap = next(c for c in svc.capabilities if c.standardid == "ivo://ivoa.net/std/TAP")
    features = {(fl.type, f.form) for lang in tapcap.languages for fl in lang.languagefeaturelists
                for f in fl.features}
    assert ("ivo://ivoa.net/std/TAPRegExt#features-adql-bitwise", "BIT_XOR") in features
    udfs = {form for ftype, form in features if ftype.endswith("#features-udf")}
    assert any(u.startswith("ivo_hasword(") for u in udfs) and any(u.startswith("ivo_healpix_index(") for u in udfs)


@pytest.mark.system
def test_data_lab_adql_refuses_tap_upload_tables_plainly(tap, users):
    with httpx.Client(base_url=tap.removesuffix("/tap"), headers={"X-DL-AuthToken": users["tap_alice"]}) as c:
        r = c.get("/query/query", params={"adql": "SELECT * FROM TAP_UPLOAD.mine"})
    assert r.status_code == 400 and "UPLOAD parameter" in r.text and "Traceback" not in r.text


@pytest.mark.system
def test_mydb_tables_are_in_tables_and_tap_schema_for_their_owner_only(tap, users):
    """TOPCAT's table browser: /tables and TAP_SCHEMA list a user's MyDB tables (schema mydb,
    names mydb.t, the columns' VOTable types and comments) to that user, and to nobody else."""
    alice, bob = users["tap_alice"], users["tap_bob"]
    with httpx.Client(base_url=tap.removesuffix("/tap"), headers={"X-DL-AuthToken": alice}, timeout=60) as c:
        r = c.get("/query/query", params={"sql": "CREATE TABLE mydb://kinds (n smallint, big bigint, "
                                                 "x double precision[], name text, seen timestamptz, ok boolean)"})
        assert r.status_code == 200, r.text
        r = c.get("/query/query", params={"sql": "COMMENT ON COLUMN mydb://kinds.name IS 'what it is called'"})
        assert r.status_code == 200, r.text

    svc = pyvo.dal.TAPService(tap, session=session(alice))
    mine = {t.name: t for t in svc.tables}
    assert {"mydb.stars", "mydb.kinds", "hipparcos.main"} <= set(mine)
    assert [c.name for c in mine["mydb.stars"].columns] == ["hip", "ra", "dec"]
    kinds = {c.name: c for c in mine["mydb.kinds"].columns}
    assert [kinds[n].datatype.content for n in ("n", "big", "x", "name", "seen", "ok")] == [
        "short", "long", "double", "char", "char", "boolean"]
    assert kinds["x"].datatype.arraysize == "*" and mine["mydb.stars"].description.startswith("MyDB table made 20")
    assert kinds["name"].description == "what it is called"
    one = httpx.get(f"{tap}/tables/mydb.kinds", headers={"Authorization": f"Bearer {alice}"})
    assert one.status_code == 200 and ET.fromstring(one.content).find("name").text == "mydb.kinds"

    # the same rows through TAP_SCHEMA, as a user's own query sees them
    rows = parse_single_table(io.BytesIO(sync(
        tap, "SELECT table_name FROM tap_schema.tables WHERE schema_name = 'mydb' ORDER BY table_name",
        token=alice).content)).array
    assert [str(n) for n in rows["table_name"]] == ["mydb.kinds", "mydb.stars"]
    rows = parse_single_table(io.BytesIO(sync(
        tap, "SELECT column_name, datatype, arraysize FROM tap_schema.columns WHERE table_name = 'mydb.stars' "
             "ORDER BY column_index", token=alice).content)).array
    assert [(str(r[0]), str(r[1])) for r in rows] == [("hip", "int"), ("ra", "double"), ("dec", "double")]
    rows = parse_single_table(io.BytesIO(sync(
        tap, "SELECT datatype, arraysize, xtype FROM tap_schema.columns WHERE table_name = 'mydb.kinds' "
             "AND column_name = 'seen'", token=alice).content)).array
    assert [str(v) for v in rows[0]] == ["char", "*", "timestamp"]
    assert "mydb" in {str(s) for s in parse_single_table(io.BytesIO(sync(
        tap, "SELECT schema_name FROM tap_schema.schemas", token=alice).content)).array["schema_name"]}

    # nobody else: not bob (who has a MyDB of his own), not anonymous callers
    for token in (bob, None):
        names = {t.name for t in pyvo.dal.TAPService(tap, session=session(token)).tables}
        assert "mydb.kinds" not in names and "mydb.stars" not in names and "hipparcos.main" in names
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        assert httpx.get(f"{tap}/tables/mydb.kinds", headers=headers).status_code == 404
        rows = parse_single_table(io.BytesIO(sync(
            tap, "SELECT table_name FROM tap_schema.tables WHERE table_name LIKE 'mydb.%'", token=token).content))
        assert len(rows.array) == 0
    with httpx.Client(base_url=tap.removesuffix("/tap"), headers={"X-DL-AuthToken": alice}, timeout=60) as c:
        assert c.get("/query/query", params={"sql": "DROP TABLE mydb://kinds"}).status_code == 200
    assert "mydb.kinds" not in {t.name for t in pyvo.dal.TAPService(tap, session=session(alice)).tables}


@pytest.mark.system
@pytest.mark.parametrize("who", ["anonymous", "tap_alice"])
def test_upload_join(tap, users, who):
    token = users.get(who)
    mine = Table({"name": ["Pleiades", "elsewhere", "Orion"], "ra": [56.75, 0.0, 83.82], "dec": [24.12, -60.0, -5.39],
                  "flag": [True, False, True]})
    svc = pyvo.dal.TAPService(tap, session=session(token))
    q = ("SELECT u.name, u.flag, h.hip, h.hpmag FROM TAP_UPLOAD.mine AS u JOIN hipparcos.main AS h "
         "ON 1 = CONTAINS(POINT('ICRS', h.ra, h.dec), CIRCLE('ICRS', u.ra, u.dec, 0.5)) ORDER BY h.hip")
    t = svc.search(q, uploads={"mine": mine}).to_table()
    assert {"Pleiades", "Orion"} <= set(t["name"]) and len(t) > 10 and str(t["hpmag"].unit) == "mag"
    assert list(t["flag"][t["name"] == "Orion"])[:1] == [True]
    job = svc.submit_job(q, uploads={"mine": mine})
    job.run().wait(timeout=60)
    assert job.phase == "COMPLETED" and len(job.fetch_result().to_table()) == len(t)
    job.delete()


@pytest.mark.system
def test_upload_refusals(tap):
    files = {"t": ("t.xml", b"<VOTABLE>not really</VOTABLE>", "application/x-votable+xml")}
    r = httpx.post(f"{tap}/sync", data={"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}, files=files)
    assert_error_document(r, 400, "not a readable VOTable")
    r = httpx.post(f"{tap}/sync", data={"QUERY": "SELECT * FROM TAP_UPLOAD.other", "UPLOAD": "t,param:t"}, files=files)
    assert_error_document(r, 400, "TAP_UPLOAD.other")


# -- async (UWS) --------------------------------------------------------------------------------

@pytest.mark.system
def test_pyvo_run_async_and_submit_job(tap, users):
    svc = pyvo.dal.TAPService(tap, session=session(users["tap_alice"]))
    t = svc.run_async("SELECT TOP 4 source_id, ra, dec FROM gaia_dr3.gaia_source_bright ORDER BY source_id").to_table()
    assert len(t) == 4 and str(t["dec"].unit) == "deg"
    job = svc.submit_job("SELECT COUNT(*) AS n FROM hipparcos.main", maxrec=10, runid="count-1")
    assert job.phase == "PENDING" and job.owner == "tap_alice"
    job.execution_duration = 120
    assert job.execution_duration.value == 120
    job.run()
    polls = []
    while job.phase not in ("COMPLETED", "ERROR", "ABORTED"):
        t0 = time.perf_counter()
        _ = job.phase
        polls.append(time.perf_counter() - t0)
        time.sleep(0.1)
    assert job.phase == "COMPLETED", job.job.errorsummary
    assert job.fetch_result().to_table()["n"][0] == 117955
    assert max(polls or [0]) < 2.0  # status polls answer at once (pyvo gives up after 10 s)
    assert job.job.runid == "count-1" and {q.id_: q.content for q in job.job.parameters}["maxrec"] == "10"
    assert job.result_uris and job.result_uri.endswith("/results/result")
    job.delete()
    with pytest.raises(pyvo.dal.DALServiceError):
        job.phase  # noqa: B018 - the job is gone


@pytest.mark.system
def test_uws_resources_and_blocking_wait(tap, users):
    h = {"Authorization": f"Bearer {users['tap_bob']}"}
    # A slow job made of ADQL alone (pg_sleep is not ADQL: refused, issue 11 item 19): a cross join counted.
    r = httpx.post(f"{tap}/async", data={"LANG": "ADQL", "QUERY": SLOW_JOIN.format(n=400)}, headers=h)
    assert r.status_code == 303
    job = r.headers["location"]
    assert httpx.get(f"{job}/phase", headers=h).text == "PENDING"
    assert httpx.get(f"{job}/owner", headers=h).text == "tap_bob"
    assert httpx.get(f"{job}/quote", headers=h).status_code == 200
    later = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 3 * 86400))
    r = httpx.post(f"{job}/destruction", data={"DESTRUCTION": later + "Z"}, headers=h)
    assert r.status_code == 303 and httpx.get(f"{job}/destruction", headers=h).text.startswith(later)
    r = httpx.post(f"{job}/executionduration", data={"EXECUTIONDURATION": "30"}, headers=h)
    assert httpx.get(f"{job}/executionduration", headers=h).text == "30"
    params = ET.fromstring(httpx.get(f"{job}/parameters", headers=h).content)
    assert {p.get("id") for p in params} >= {"lang", "query"}
    assert httpx.post(f"{job}/phase", data={"PHASE": "RUN"}, headers=h).status_code == 303
    t0 = time.perf_counter()
    doc = ET.fromstring(httpx.get(job, params={"WAIT": "30"}, headers=h, timeout=60).content)
    phase = doc.find(f"{UWS}phase").text
    while phase in ("QUEUED", "EXECUTING"):  # WAIT returns at each phase change
        doc = ET.fromstring(httpx.get(job, params={"WAIT": "-1"}, headers=h, timeout=90).content)
        phase = doc.find(f"{UWS}phase").text
    waited = time.perf_counter() - t0
    assert phase == "COMPLETED" and 1.0 < waited < 20
    assert doc.find(f"{UWS}results/{UWS}result").get("{http://www.w3.org/1999/xlink}href").endswith("/results/result")
    t0 = time.perf_counter()
    httpx.get(job, params={"WAIT": "10"}, headers=h)  # a finished job does not block
    assert time.perf_counter() - t0 < 2
    assert httpx.post(job, data={"ACTION": "DELETE"}, headers=h).status_code == 303
    assert httpx.get(job, headers=h).status_code == 404


@pytest.mark.system
def test_failed_job_has_an_error_document(tap, users):
    h = {"Authorization": f"Bearer {users['tap_bob']}"}
    r = httpx.post(f"{tap}/async", data={"QUERY": "SELECT nope FROM hipparcos.main", "PHASE": "RUN"}, headers=h)
    job = r.headers["location"]
    doc = ET.fromstring(httpx.get(job, params={"WAIT": "30"}, headers=h, timeout=60).content)
    while doc.find(f"{UWS}phase").text in ("QUEUED", "EXECUTING"):
        doc = ET.fromstring(httpx.get(job, params={"WAIT": "30"}, headers=h, timeout=60).content)
    assert doc.find(f"{UWS}phase").text == "ERROR"
    assert '"nope" does not exist' in doc.find(f"{UWS}errorSummary/{UWS}message").text
    assert_error_document(_ok_doc(httpx.get(f"{job}/error", headers=h)), 400, "nope")
    assert_error_document(httpx.get(f"{job}/results/result", headers=h), 400, "ERROR")
    httpx.delete(job, headers=h)


def _ok_doc(r):
    """/error answers 200 with the error document; check it as if it were a refusal."""
    assert r.status_code == 200
    r.status_code = 400
    return r


@pytest.mark.system
def test_jobs_are_per_user(tap, users):
    alice, bob = ({"Authorization": f"Bearer {users[n]}"} for n in ("tap_alice", "tap_bob"))
    job = httpx.post(f"{tap}/async", data={"QUERY": "SELECT TOP 1 hip FROM hipparcos.main"}, headers=alice).headers["location"]
    jobid = job.rsplit("/", 1)[1]
    listed = lambda h: {ref.get("id") for ref in ET.fromstring(httpx.get(f"{tap}/async", headers=h).content)}  # noqa: E731
    assert jobid in listed(alice)
    assert jobid not in listed(bob) and jobid not in listed({})
    for h in (bob, {}):
        assert_error_document(httpx.get(job, headers=h), 404, "no job")
        assert_error_document(httpx.get(f"{job}/parameters", headers=h), 404, "no job")
        assert_error_document(httpx.post(f"{job}/phase", data={"PHASE": "RUN"}, headers=h), 404, "no job")
        assert_error_document(httpx.delete(job, headers=h), 404, "no job")
    assert ET.fromstring(httpx.get(job, headers=alice).content).find(f"{UWS}phase").text == "PENDING"
    only_pending = listed_phase = {ref.get("id") for ref in ET.fromstring(
        httpx.get(f"{tap}/async", params={"PHASE": "PENDING"}, headers=alice).content)}
    assert jobid in only_pending and jobid in listed_phase
    assert jobid not in {ref.get("id") for ref in ET.fromstring(
        httpx.get(f"{tap}/async", params={"PHASE": "COMPLETED"}, headers=alice).content)}
    httpx.delete(job, headers=alice)


@pytest.mark.system
def test_jobs_are_destroyed_after_their_destruction_time(tap, users, service):
    h = {"Authorization": f"Bearer {users['tap_alice']}"}
    r = httpx.post(f"{tap}/async", data={"QUERY": "SELECT TOP 2 hip FROM hipparcos.main", "PHASE": "RUN"}, headers=h)
    job = r.headers["location"]
    jobid = job.rsplit("/", 1)[1]
    doc = ET.fromstring(httpx.get(job, params={"WAIT": "30"}, headers=h, timeout=60).content)
    assert doc.find(f"{UWS}phase").text in ("EXECUTING", "COMPLETED")
    httpx.get(job, params={"WAIT": "30"}, headers=h, timeout=60)
    result_files = list((service.settings.home / "jobs").glob(f"{jobid}*"))
    assert result_files
    past = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 5))
    assert httpx.post(f"{job}/destruction", data={"DESTRUCTION": past}, headers=h).status_code == 303
    time.sleep(1.1)  # purges run at most once a second
    assert httpx.get(job, headers=h).status_code == 404
    assert not any(p.exists() for p in result_files)


@pytest.mark.system
def test_restart_during_a_job_ends_it_in_error(service, admin):
    from conftest import free_port, start_service

    s = dataclasses.replace(service.settings, service_port=free_port())
    proc = start_service(s)
    base = f"{s.service_url}/tap"
    try:
        token = service.add_user("tap_restart")
        h = {"Authorization": f"Bearer {token}"}
        # Far longer than the test (the whole cross join); EXECUTIONDURATION bounds what it burns.
        r = httpx.post(f"{base}/async", data={"QUERY": SLOW_JOIN.format(n=200_000),
                                              "PHASE": "RUN", "EXECUTIONDURATION": "30"}, headers=h)
        job = r.headers["location"]
        phase = "QUEUED"
        for _ in range(100):
            phase = httpx.get(f"{job}/phase", headers=h).text
            if phase == "EXECUTING":
                break
            time.sleep(0.1)
        assert phase == "EXECUTING"
        proc.kill()
        proc.wait(timeout=30)
        proc = start_service(s)
        doc = ET.fromstring(httpx.get(job, headers=h).content)
        assert doc.find(f"{UWS}phase").text == "ERROR"
        assert "restarted" in doc.find(f"{UWS}errorSummary/{UWS}message").text
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        # The killed service's query would sleep on in PostgreSQL; end it.
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'starbox_u_tap_restart'")


# -- VOSI, examples, cone search ------------------------------------------------------------------

@pytest.mark.system
def test_tables_and_capabilities(tap):
    svc = pyvo.dal.TAPService(tap, session=session())
    names = {t.name for t in svc.tables}
    assert {"hipparcos.main", "gaia_dr3.gaia_source_bright", "openngc.objects", "ivoa.obscore",
            "tap_schema.columns"} <= names
    cols = {c.name: c for c in svc.tables["hipparcos.main"].columns}
    assert cols["ra"].unit == "deg" and cols["ra"].ucd == "pos.eq.ra;meta.main"
    one = ET.fromstring(httpx.get(f"{tap}/tables/hipparcos.main").content)
    assert one.tag.endswith("table") and one.find("name").text == "hipparcos.main" and len(one.findall("column")) > 10
    assert ET.fromstring(httpx.get(f"{tap}/tables/HIPPARCOS.MAIN").content).find("name").text == "hipparcos.main"
    assert not ET.fromstring(httpx.get(f"{tap}/tables", params={"detail": "min"}).content).findall(".//column")
    ids = {c.standardid for c in svc.capabilities}
    assert {"ivo://ivoa.net/std/TAP", "ivo://ivoa.net/std/VOSI#tables-1.1", "ivo://ivoa.net/std/DALI#examples"} <= ids
    tapcap = next(c for c in svc.capabilities if c.standardid == "ivo://ivoa.net/std/TAP")
    mimes = {f.mime for f in tapcap.outputformats}
    assert {"application/x-votable+xml", "text/csv", "application/fits", "application/vnd.apache.parquet"} <= mimes
    assert "available>true<" in httpx.get(f"{tap}/availability").text


@pytest.mark.system
def test_examples_run(tap):
    doc = httpx.get(f"{tap}/examples")
    assert doc.status_code == 200
    root = ET.fromstring(doc.content)
    queries = [el.text for el in root.iter() if el.get("property") == "query"]
    assert len(queries) >= 3
    assert any("gaia_dr3.gaia_source_bright" in q and "hipparcos.main" in q for q in queries)
    for q in queries:
        r = sync(tap, q, MAXREC="20")
        assert r.status_code == 200 and status_of(r.content)[0] == "OK", (q, r.text)


@pytest.mark.system
def test_cone_search(service, admin):
    base = service.url + "/scs"
    r = httpx.get(f"{base}/hipparcos/main", params={"RA": 56.75, "DEC": 24.12, "SR": 0.5})
    assert r.status_code == 200, r.text
    t = parse_single_table(io.BytesIO(r.content))
    ucds = {f.ucd: f.name for f in t.fields}
    assert ucds["ID_MAIN"] == "hip" and ucds["POS_EQ_RA_MAIN"] == "ra" and ucds["POS_EQ_DEC_MAIN"] == "dec"
    assert len(t.array) > 5
    verb1 = parse_single_table(io.BytesIO(httpx.get(f"{base}/hipparcos/main",
                                                   params={"RA": 56.75, "DEC": 24.12, "SR": 0.5, "VERB": 1}).content))
    verb3 = parse_single_table(io.BytesIO(httpx.get(f"{base}/hipparcos/main",
                                                   params={"RA": 56.75, "DEC": 24.12, "SR": 0.5, "VERB": 3}).content))
    assert [f.name for f in verb1.fields] == ["hip", "ra", "dec"] and len(verb3.fields) > len(t.fields)
    scs = pyvo.dal.SCSService(f"{base}/gaia_dr3/gaia_source_bright")
    res = scs.search(pos=(56.75, 24.12), radius=0.3)
    assert len(res) > 3
    listing = httpx.get(base).text
    tables = {r[0] for r in admin.execute("SELECT schema || '.' || tbl_name FROM public.tbl_stat")}
    for name in tables:  # every catalog with a position has a cone search
        assert f"/scs/{name.replace('.', '/')}?" in listing


@pytest.mark.system
@pytest.mark.parametrize("path,params,status,word", [
    ("hipparcos/main", {"DEC": 1, "SR": 1}, 400, "RA"),
    ("hipparcos/main", {"RA": 1, "DEC": 100, "SR": 1}, 400, "DEC"),
    ("hipparcos/main", {"RA": 1, "DEC": 1, "SR": 50}, 400, "SR"),
    ("hipparcos/main", {"RA": "x", "DEC": 1, "SR": 1}, 400, "RA"),
    ("hipparcos/main", {"RA": 1, "DEC": 1, "SR": 1, "VERB": 9}, 400, "VERB"),
    ("no/table", {"RA": 1, "DEC": 1, "SR": 1}, 404, "no cone search"),
])
def test_cone_search_errors(service, path, params, status, word):
    r = httpx.get(f"{service.url}/scs/{path}", params=params)
    assert r.status_code == status, r.text
    root = ET.fromstring(r.content)
    error = root.find(f"{VOT}INFO[@name='Error']")
    assert error is not None and word in error.get("value")


# -- the spatial indexes ----------------------------------------------------------------------------

def _plan(admin, starbox, adql: str) -> str:
    """The SQL the service runs for `adql`, and PostgreSQL's plan for it."""
    from starbox.accounts import ANONYMOUS
    from starbox.tap import adql as adql_mod
    from starbox.tap import geometry

    sql, _ = adql_mod.translate(adql, ANONYMOUS)
    sql = geometry.rewrite(sql, lambda tables: geometry.load_indexes(admin, tables))
    plan = "\n".join(r[0] for r in admin.execute("EXPLAIN " + sql))
    return sql, plan


@pytest.mark.api
@pytest.mark.parametrize("adql,expect", [
    ("SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 0.5))",
     "main_spoint_idx"),
    ("SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), BOX('ICRS', 56.75, 24.12, 1, 0.5))",
     "main_spoint_idx"),
    ("SELECT hip FROM hipparcos.main WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
     "POLYGON('ICRS', 55, 23, 58, 23, 58, 25, 55, 25))", "main_spoint_idx"),
    ("SELECT h.hip, g.source_id FROM hipparcos.main AS h JOIN gaia_dr3.gaia_source_bright AS g "
     "ON DISTANCE(POINT('ICRS', h.ra, h.dec), POINT('ICRS', g.ra, g.dec)) < 1.0 / 3600", "gaia_source_bright_q3c_idx"),
    ("SELECT h.hip FROM hipparcos.main AS h, gaia_dr3.gaia_source_bright AS g "
     "WHERE 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', h.ra, h.dec, 1.0 / 3600))", "gaia_source_bright_q3c_idx"),
])
def test_explain_uses_the_spatial_indexes(admin, starbox, adql, expect):
    sql, plan = _plan(admin, starbox, adql)
    assert "Index" in plan and expect in plan, (sql, plan)


@pytest.mark.api
def test_explain_on_a_table_with_only_q3c(admin, starbox):
    admin.execute("DROP TABLE IF EXISTS tap_test.q3c_only")
    admin.execute("CREATE SCHEMA IF NOT EXISTS tap_test")
    admin.execute("CREATE TABLE tap_test.q3c_only AS SELECT hip, ra, dec FROM hipparcos.main")
    admin.execute("CREATE INDEX q3c_only_idx ON tap_test.q3c_only (q3c_ang2ipix(ra, dec))")
    admin.execute("ANALYZE tap_test.q3c_only")
    for shape in ("CIRCLE('ICRS', 56.75, 24.12, 0.5)", "BOX('ICRS', 56.75, 24.12, 1, 0.5)",
                  "POLYGON('ICRS', 55, 23, 58, 23, 58, 25, 55, 25)"):
        adql = f"SELECT hip FROM tap_test.q3c_only WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), {shape})"
        sql, plan = _plan(admin, starbox, adql)
        assert "q3c_only_idx" in plan, (sql, plan)
        n_q3c = admin.execute(f"SELECT count(*) FROM ({sql}) q").fetchone()[0]
        n_catalog = admin.execute(f"SELECT count(*) FROM ({_plan(admin, starbox, adql.replace('tap_test.q3c_only', 'hipparcos.main'))[0]}) q").fetchone()[0]
        assert n_q3c == n_catalog > 0, shape  # same rows as the pgsphere form
