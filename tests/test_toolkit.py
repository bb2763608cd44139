"""The toolkit (`from starbox import authClient as ac, queryClient as qc, storeClient as sc`)
against the live service: the same calls a Data Lab lesson makes, once over real HTTP and once
in the in-process mode (the service's application inside the test process, no network)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
from collections import OrderedDict

import numpy as np
import pandas as pd
import pytest

from starbox import accounts, inprocess
from starbox.client import http as _http
from starbox import authClient as ac
from starbox import queryClient as qc
from starbox import settings as settings_mod
from starbox import storeClient as sc
from starbox.convert import convert

USER, PASSWORD = "tkuser", "tk-password"
SIRIUS_SQL = "SELECT hip, ra, dec, hpmag, b_v FROM hipparcos.main WHERE hip = 32349"
SIRIUS_CSV = "hip,ra,dec,hpmag,b_v\n32349,101.2885410520664,-16.713143062644765,-1.0876,0.009\n"
BRIGHT_SQL = "SELECT hip, ra, dec, hpmag FROM hipparcos.main WHERE hpmag < 2"
NEAREST_SQL = (
    "SELECT b.hip, g.source_id, q3c_dist(b.ra, b.dec, g.ra, g.dec) * 3600 AS dist_arcsec "
    "FROM mydb://{t} AS b JOIN LATERAL (SELECT g.source_id, g.ra, g.dec FROM gaia_dr3.gaia_source_bright g "
    "WHERE q3c_join(b.ra, b.dec, g.ra, g.dec, 60/3600.0) "
    "ORDER BY q3c_dist(b.ra, b.dec, g.ra, g.dec) ASC LIMIT 1) AS g ON true ORDER BY b.hip")


@pytest.fixture(scope="module", params=["http", "inprocess"])
def tk(request, service, tmp_path_factory):
    """The toolkit pointed at the live service, with a private HOME (~/.datalab) and a user.
    In the in-process mode the URLs point nowhere: every call must be served without them."""
    home = tmp_path_factory.mktemp("tk-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.delenv("STARBOX_TOKEN", raising=False)
        settings_mod.get.cache_clear()  # settings read in here must not outlive the patched env
        service.add_user(USER, PASSWORD)
        base = service.url if request.param == "http" else "http://127.0.0.1:9"
        ac.set_svc_url(base + "/auth/")
        qc.set_svc_url(base + "/query")
        sc.set_svc_url(base + "/storage")
        _http.set_url("res", base + "/res")
        if request.param == "inprocess":
            inprocess.start(service.settings)
        try:
            yield service
        finally:
            inprocess.stop()
            _http.set_mode(None)
            for name in ("auth", "query", "storage", "res"):
                _http.set_url(name, None)
            _http._session.update(user=None, token=None)
            _http._revoked.clear()
            settings_mod.get.cache_clear()


@pytest.fixture
def over_http(tk):
    if _http.mode() != "http":
        pytest.skip("about the service's URL, which the in-process mode does not use")


@pytest.fixture(scope="module")
def login(tk):
    token = ac.login(USER, PASSWORD)
    assert _http.is_token(token), token
    yield token
    ac.logout(token)


def endpoint_or_skip(tk, path: str, token: str) -> None:
    with tk.client(token) as c:
        if c.get(path).status_code == 404:
            pytest.skip("endpoint not yet available")


# --- authClient ----------------------------------------------------------------------------------

@pytest.mark.unit
def test_constants_match_accounts():
    assert _http.ANON_TOKEN == accounts.ANON_TOKEN
    assert _http.TOKEN_RE.pattern == accounts.TOKEN_RE.pattern


@pytest.mark.system
def test_auth_session(tk):
    assert ac.isAlive() and qc.isAlive() and sc.isAlive()
    assert ac.get_svc_url().endswith("/auth")
    assert ac.whoAmI() == "anonymous"
    assert "Invalid password" in ac.login(USER, "wrong-password")
    assert ac.login("anonymous") == accounts.ANON_TOKEN
    assert ac.login(USER) == "No password or token supplied"

    token = ac.login(USER, PASSWORD)
    assert accounts.TOKEN_RE.match(token) and token.startswith(USER + ".")
    home = _http.datalab_home()
    assert (home / f"id_token.{USER}").read_text() == token
    assert ac.whoAmI() == USER
    assert ac.isValidToken(token) and ac.isValidToken(accounts.ANON_TOKEN) and not ac.isValidToken("junk")
    assert ac.isValidUser(USER) and not ac.isValidUser("nobody_here")
    assert ac.isValidPassword(USER, PASSWORD) and not ac.isValidPassword(USER, "nope-nope")
    assert ac.isUserLoggedIn(USER) and ac.isTokenLoggedIn(token)
    assert ac.hasAccess(USER, "vos://x.csv") and not ac.hasAccess("anonymous", "vos://x.csv")
    assert ac.get_profile() == "default" and ac.list_profiles() == "None"

    # A new kernel: nothing in memory, the login comes from ~/.datalab.
    _http._session.update(user=None, token=None)
    assert ac.whoAmI() == USER
    assert ac.login(USER) == token  # no password: the saved, still valid token

    assert ac.logout() == "OK"
    assert not (home / f"id_token.{USER}").exists()
    assert ac.whoAmI() == "anonymous"
    assert not ac.isValidToken(token) and not ac.isTokenLoggedIn(token)
    assert "not logged in" in ac.logout(token) or "Invalid" in ac.logout(token)


@pytest.mark.system
def test_token_order(tk, monkeypatch):
    """explicit > this process's login > ~/.datalab > STARBOX_TOKEN > anonymous."""
    configured = tk.add_user("tkconf", PASSWORD)
    real = settings_mod.get()
    monkeypatch.setattr(settings_mod, "get", lambda: dataclasses.replace(real, token=configured))
    assert ac.whoAmI() == "tkconf"
    assert _http.token("someone.1.1.other_access") == "someone.1.1.other_access"
    assert qc.mydb_list() == ""  # runs as tkconf, whose MyDB is empty
    token = ac.login(USER, PASSWORD)
    assert ac.whoAmI() == USER
    assert ac.logout(token) == "OK"
    assert ac.whoAmI() == "tkconf"


@pytest.mark.system
def test_password_reset(tk):
    name = f"tkpw_{_http.mode()}"  # one account per mode: the password changes here
    tk.add_user(name, PASSWORD)
    token = ac.login(name, PASSWORD)
    new = ac.passwordReset(token, name, "changed-pw")
    assert accounts.TOKEN_RE.match(new) and new != token
    assert not ac.isValidToken(token) and ac.isValidToken(new) and ac.whoAmI() == name
    assert "Invalid password" in ac.login(name, PASSWORD)
    assert ac.passwordReset(new, "tkuser", "other-pw").startswith("Error")  # only your own
    assert ac.logout() == "OK" and ac.whoAmI() == "anonymous"


@pytest.mark.system
def test_url_from_starbox_url(tk, over_http, monkeypatch):
    """Nothing pinned: every module finds the service through STARBOX_URL (the settings)."""
    pinned = dict(_http._urls)
    _http._urls.clear()
    monkeypatch.setenv("STARBOX_URL", tk.url + "/")
    settings_mod.get.cache_clear()
    try:
        assert qc.get_svc_url() == tk.url + "/query" and sc.get_svc_url() == tk.url + "/storage"
        assert ac.isAlive() and qc.query(sql=SIRIUS_SQL) == SIRIUS_CSV
        qc.set_svc_url(tk.url + "/query")  # a pinned sibling moves the others along
        monkeypatch.setenv("STARBOX_URL", "http://127.0.0.1:9")
        settings_mod.get.cache_clear()
        assert sc.get_svc_url() == tk.url + "/storage" and ac.isAlive()
    finally:
        _http._urls.clear()
        _http._urls.update(pinned)
        settings_mod.get.cache_clear()


@pytest.mark.system
def test_unreachable_service_is_a_message(tk, over_http):
    dead = "http://127.0.0.1:9"
    assert not ac.isAlive(dead + "/auth")
    ac.set_svc_url(dead + "/auth")
    try:
        assert ac.login(USER, PASSWORD) == "AuthManager Service not responding."
        assert ac.isValidUser(USER) is False
    finally:
        ac.set_svc_url(tk.url + "/auth")
    qc.set_svc_url(dead + "/query")
    try:
        with pytest.raises(qc.queryClientError, match="not reachable"):
            qc.query(sql=SIRIUS_SQL)
        # the table name is checked before any HTTP call
        with pytest.raises(qc.queryClientError, match='Invalid table name: "Bad-Name"'):
            qc.mydb_drop("Bad-Name")
    finally:
        qc.set_svc_url(tk.url + "/query")


# --- queries ---------------------------------------------------------------------------------------

@pytest.mark.system
def test_query_text_formats(tk):
    assert qc.query(sql=SIRIUS_SQL) == SIRIUS_CSV
    assert qc.query(SIRIUS_SQL) == SIRIUS_CSV
    assert qc.query(accounts.ANON_TOKEN, SIRIUS_SQL) == SIRIUS_CSV
    assert qc.query(token=None, sql=SIRIUS_SQL, fmt="csv") == SIRIUS_CSV
    assert qc.query(sql=SIRIUS_SQL, format="csv-noheader") == SIRIUS_CSV.splitlines()[1]
    assert qc.query(sql=SIRIUS_SQL, fmt="tsv") == SIRIUS_CSV.replace(",", "\t")
    assert "32349" in qc.query(sql=SIRIUS_SQL, fmt="ascii")
    assert qc.query(adql="SELECT TOP 2 hip, hpmag FROM hipparcos.main ORDER BY hpmag") == \
        "hip,hpmag\n32349,-1.0876\n30438,-0.5536\n"
    vot = qc.query(sql=SIRIUS_SQL, fmt="votable")
    assert vot.startswith("<?xml") and "VOTABLE" in vot
    assert float(convert(vot, "votable").array["hpmag"][0]) == pytest.approx(-1.0876, abs=1e-4)
    from astropy.table import Table

    fits = qc.query(sql=SIRIUS_SQL, fmt="fits")
    assert isinstance(fits, bytes) and fits.startswith(b"SIMPLE")
    assert Table.read(io.BytesIO(fits), format="fits")["hip"][0] == 32349


@pytest.mark.system
def test_query_converted_formats(tk):
    df = qc.query(sql=SIRIUS_SQL, fmt="pandas")
    assert list(df.columns) == ["hip", "ra", "dec", "hpmag", "b_v"] and df["hpmag"][0] == pytest.approx(-1.0876)
    table = qc.query(sql=SIRIUS_SQL, fmt="table")
    assert table.colnames == ["hip", "ra", "dec", "hpmag", "b_v"] and table["hip"][0] == 32349
    arr = qc.query(sql="SELECT hip, hpmag FROM hipparcos.main WHERE hip IN (32349, 91262) ORDER BY hip",
                   fmt="array")
    assert arr.tolist() == [[32349.0, -1.0876], [91262.0, 0.0868]]
    rec = qc.query(sql=SIRIUS_SQL, fmt="structarray")
    assert rec.dtype.names == ("hip", "ra", "dec", "hpmag", "b_v") and rec["hpmag"][()] == pytest.approx(-1.0876)
    # dl's duplicate-column rule
    assert list(qc.query(sql="SELECT 1 AS ra, 2 AS ra, 3 AS ra", fmt="pandas").columns) == ["ra", "ra_1", "ra_2"]


@pytest.mark.system
@pytest.mark.parametrize("fmt", ["arrow", "parquet"])
def test_query_fast_paths(tk, fmt):
    df = qc.query(sql="SELECT hip, ra, dec, hpmag, b_v FROM hipparcos.main WHERE hpmag < 3 ORDER BY hpmag", fmt=fmt)
    assert isinstance(df, pd.DataFrame) and len(df) > 100
    assert df["hip"].iloc[0] == 32349 and df["hpmag"].iloc[0] == pytest.approx(-1.0876)
    assert df.dtypes.to_dict() == {"hip": np.int32, "ra": np.float64, "dec": np.float64, "hpmag": np.float32,
                                   "b_v": np.float32}
    special = qc.query(sql="SELECT 'NaN'::float8 AS a, NULL::int AS c, 'x'::text AS s", fmt=fmt)
    assert np.isnan(special["a"][0]) and pd.isna(special["c"][0]) and special["s"][0] == "x"


@pytest.mark.system
def test_query_error_carries_the_service_message(tk):
    with pytest.raises(qc.queryClientError) as err:
        qc.query(sql="SELECT nope FROM hipparcos.main")
    assert 'column "nope" does not exist' in err.value.message and str(err.value) == err.value.message
    with pytest.raises(qc.queryClientError, match="No query specified"):
        qc.query(fmt="csv")
    with pytest.raises(qc.queryClientError, match="no_such"):
        qc.query(sql="SELECT * FROM no_such.table", fmt="arrow")
    with pytest.raises(qc.queryClientError, match="time limit of 1 s"):
        qc.query(sql="SELECT pg_sleep(3)", timeout=1)


@pytest.mark.system
def test_query_out_local(tk, tmp_path):
    target = tmp_path / "sirius.csv"
    assert qc.query(sql=SIRIUS_SQL, out=str(target)) == "OK"
    assert target.read_text() == SIRIUS_CSV
    assert qc.query(sql=SIRIUS_SQL, fmt="parquet", out="file://" + str(tmp_path / "s.parquet")) == "OK"
    assert pd.read_parquet(tmp_path / "s.parquet")["hip"].tolist() == [32349]
    assert not list(tmp_path.glob(".*.part"))


@pytest.mark.system
def test_query_async(tk, login, tmp_path):
    jobid = qc.query(sql="SELECT hip FROM hipparcos.main WHERE hpmag < 4 ORDER BY hip", async_=True)
    assert re.fullmatch(r"[0-9a-f]{20}", jobid)
    assert qc.wait(jobid, wait=0.2) == "COMPLETED" and qc.status(jobid) == "COMPLETED"
    assert qc.status(login, jobid) == "COMPLETED"  # dl's (token, jobId) form
    assert jobid in qc.jobs() and any(j["jobid"] == jobid for j in qc.jobs(format="json"))
    text = qc.results(jobid)
    assert text.startswith("hip\n") and len(text.splitlines()) > 5

    df = qc.query(sql=SIRIUS_SQL, fmt="pandas", async_=True, wait=True, poll=0.2)
    assert df["hip"].tolist() == [32349]
    fast = qc.query(sql=SIRIUS_SQL, fmt="arrow", **{"async": True, "wait": True, "poll": 0.2})
    assert fast["hpmag"].dtype == np.float32 and fast["hip"].tolist() == [32349]
    failed = qc.query(sql="SELECT 1/0 AS x", async_=True, wait=True, poll=0.2)
    assert "division by zero" in failed

    jobid = qc.query(USER, sql=SIRIUS_SQL, async_=True)  # a user name as the token: ~/.datalab/id_token.<user>
    assert qc.wait(jobid, wait=0.2) == "COMPLETED"
    target = tmp_path / "job.csv"
    assert qc.results(jobid, fname=str(target)) == "OK" and target.read_text() == SIRIUS_CSV
    slow = qc.query(sql="SELECT pg_sleep(5)", async_=True)
    assert qc.abort(slow) == "ABORTED" and qc.status(slow) == "ABORTED"


@pytest.mark.system
def test_out_mydb_and_crossmatch(tk, login):
    endpoint_or_skip(tk, "/query/list", login)
    assert qc.query(sql=BRIGHT_SQL, out="mydb://tk_bright", drop=True) == "OK"
    assert qc.query(sql="SELECT count(*) AS n FROM mydb://tk_bright") == "n\n46\n"
    matches = qc.query(sql=NEAREST_SQL.format(t="tk_bright"), fmt="pandas")
    assert 40 <= len(matches) <= 46 and (matches["dist_arcsec"] < 60).all()
    # Bright stars are in gaia_source_bright as their Hipparcos substitutes (source_id = -hip);
    # only alpha Cen A/B moved more than 60" between the Hipparcos and Gaia epochs.
    assert set(qc.query(sql=BRIGHT_SQL, fmt="pandas")["hip"]) - set(matches["hip"]) == {71681, 71683}
    assert (matches["source_id"] == -matches["hip"]).sum() >= 38
    vega = matches[matches["hip"] == 91262]
    assert vega["source_id"].tolist() == [-91262] and vega["dist_arcsec"].iloc[0] < 10
    joined = qc.query(sql="SELECT b.hip, count(*) AS n FROM mydb://tk_bright b JOIN gaia_dr3.gaia_source_bright g "
                          "ON q3c_join(b.ra, b.dec, g.ra, g.dec, 60/3600.0) GROUP BY b.hip", fmt="arrow")
    assert set(joined["hip"]) == set(matches["hip"])
    assert "tk_bright" in qc.mydb_list().splitlines()


# --- MyDB ----------------------------------------------------------------------------------------

@pytest.mark.system
def test_mydb_helpers(tk, login, tmp_path):
    endpoint_or_skip(tk, "/query/list", login)
    assert qc.mydb_flush() == "OK"
    schema = OrderedDict([("id", "integer"), ("ra", "double precision"), ("dec", "double precision")])
    assert qc.mydb_create("tk_targets", schema) == "OK"
    assert qc.mydb_insert("tk_targets", "id,ra,dec\n1,101.2885,-16.7131\n2,279.2347,38.7837\n") == "OK"
    extra = pd.DataFrame({"id": [3], "ra": [213.9153], "dec": [19.1824]})
    assert qc.mydb_insert("tk_targets", extra) == "OK"
    assert qc.mydb_list().splitlines() == ["tk_targets"]
    assert qc.mydb_list("tk_targets").splitlines() == ["id", "ra", "dec"]
    assert qc.mydb_index("tk_targets", q3c="ra,dec", cluster=True) == "OK"
    assert qc.mydb_index("tk_targets", "id") == "OK"
    xmatch = qc.query(sql="SELECT t.id, h.hip FROM mydb://tk_targets t JOIN hipparcos.main h "
                          "ON q3c_join(t.ra, t.dec, h.ra, h.dec, 0.01) ORDER BY t.id", fmt="pandas")
    assert xmatch["hip"].tolist() == [32349, 91262, 69673]
    assert qc.mydb_rename("tk_targets", "tk_targets2") == "OK"
    assert qc.mydb_copy("tk_targets2", "tk_targets3") == "OK"
    assert qc.mydb_truncate("tk_targets3") == "OK"
    assert qc.query(sql="SELECT count(*) AS n FROM mydb://tk_targets3") == "n\n0\n"
    assert qc.mydb_drop("tk_targets3") == "OK"
    assert "not known" in qc.mydb_drop("tk_targets3")
    with pytest.raises(qc.queryClientError):
        qc.mydb_insert("tk_missing", "a\n1\n")
    with pytest.raises(qc.queryClientError, match="Invalid table name"):
        qc.mydb_create("9lives", "a,integer\n")
    assert qc.mydb_flush() == "OK" and qc.mydb_list() == ""


@pytest.mark.system
def test_mydb_import(tk, login, tmp_path):
    endpoint_or_skip(tk, "/query/list", login)
    # a local file bigger than one 4 MiB chunk of the staged upload
    n = 150_000
    frame = pd.DataFrame({"id": np.arange(n), "x": np.linspace(0, 1, n), "name": [f"star_{i:06d}" for i in range(n)]})
    path = tmp_path / "big.csv"
    frame.to_csv(path, index=False)
    assert path.stat().st_size > sc.CHUNK_SIZE
    assert qc.mydb_import("tk_big", str(path)) == "OK"
    back = qc.query(sql="SELECT count(*) AS n, sum(id) AS s, max(name) AS m FROM mydb://tk_big", fmt="pandas")
    assert back.to_dict("records") == [{"n": n, "s": n * (n - 1) // 2, "m": "star_149999"}]
    assert qc.mydb_import("tk_df", frame.head(10)) == "OK"
    assert qc.query(sql="SELECT count(*) AS n FROM mydb://tk_df") == "n\n10\n"
    assert qc.mydb_import("tk_df", "id,x,name\n99,0.5,extra\n", append=True) == "OK"
    assert qc.query(sql="SELECT count(*) AS n FROM mydb://tk_df") == "n\n11\n"
    assert "2 columns" in qc.mydb_import("tk_bad", "a,b\n1,2\n", schema_def="a,integer\n")
    assert qc.mydb_drop("tk_big") == "OK" and qc.mydb_drop("tk_df") == "OK"


@pytest.mark.system
def test_res_client_user_record_and_password(tk):
    """starbox.resClient: one's own record, read and changed; the refusals; a new password."""
    from starbox import resClient as rc

    import secrets

    me = f"tkres_{secrets.token_hex(3)}"  # once per transport: the password changes below
    token = tk.add_user(me, "tk-res-pw-1")
    assert rc.listFields() == "username,email,name,institute,created"
    assert rc.getUser(token, me, "email") == ""
    assert rc.setUser(token, me, "email", "me@example.org") == "OK"
    assert rc.setUser(token, me, "name", "Ada Lovelace") == "OK"
    assert (rc.getUser(token, me, "email"), rc.getUser(token, me, "name")) == ("me@example.org", "Ada Lovelace")
    assert rc.getUser(token, me, "username") == me
    for call, words in (
        (lambda: rc.setUser(token, me, "email", "not-an-address"), "not an email address"),
        (lambda: rc.setUser(token, me, "created", "1999"), "not yours to change"),
        (lambda: rc.setUser(token, me, "name", "x" * 300), "at most 256"),
        (lambda: rc.getUser(token, USER, "email"), "their own record"),
        (lambda: rc.getUser(ac.ANON_TOKEN, me, "email"), "logged-in user"),
    ):
        with pytest.raises(rc.dlResError, match=words):
            call()
    assert "makes no accounts on request" in rc.createUser("newbie", "pw-123456", "n@x.org", "N", "I")
    rc.passwordReset(token, me, "tk-res-pw-2")
    assert not ac.isValidToken(token)  # every session of the account ended
    assert ac.isValidPassword(me, "tk-res-pw-2") and not ac.isValidPassword(me, "tk-res-pw-1")


# --- storage -------------------------------------------------------------------------------------

@pytest.mark.system
def test_storage_round_trip(tk, login, tmp_path):
    endpoint_or_skip(tk, "/storage/ls?name=vos://", login)
    sc.rmdir("vos://tkdir")  # a leftover from an earlier run, if any
    assert sc.mkdir("vos://tkdir") == "OK"
    assert "already exists" in sc.mkdir("vos://tkdir")
    local = tmp_path / "notes.txt"
    local.write_text("hello storage\n")
    assert sc.put(str(local), "vos://tkdir/") == ["OK"]
    assert sc.put(str(local), "vos://tkdir/renamed.txt", verbose=False) == ["OK"]
    assert sc.ls("vos://tkdir") == "notes.txt,renamed.txt"
    assert "notes.txt" in sc.ls("vos://tkdir", format="long")
    info = sc.stat("vos://tkdir/notes.txt")
    assert info["type"] == "data" and info["size"] == len("hello storage\n")
    assert sc.stat("vos://tkdir")["type"] == "container" and sc.stat("vos://tkdir/none") == {}
    assert sc.access("vos://tkdir/notes.txt") and sc.access("vos://tkdir/notes.txt", "rw")
    assert sc.isdir("vos://tkdir") and not sc.isdir("vos://tkdir/notes.txt")
    assert sc.get("vos://tkdir/notes.txt", "") == "hello storage\n"
    assert sc.get(fr="tkdir/notes.txt", mode="binary") == b"hello storage\n"
    assert sc.get("vos://tkdir/notes.txt", mode="fileobj").read() == b"hello storage\n"
    assert sc.get("vos://tkdir/notes.txt", str(tmp_path / "copy.txt"), verbose=False) == ["OK"]
    assert (tmp_path / "copy.txt").read_text() == "hello storage\n"
    got = tmp_path / "got"
    got.mkdir()
    assert sc.get("vos://tkdir/*.txt", str(got), verbose=False) == ["OK", "OK"]
    assert sorted(p.name for p in got.iterdir()) == ["notes.txt", "renamed.txt"]

    assert sc.cp("vos://tkdir/notes.txt", "vos://tkdir/copy.txt") == "OK"
    assert sc.mv("vos://tkdir/copy.txt", "vos://tkdir/moved.txt") == "OK"
    assert sc.cp("local.txt", "vos://x") == "Cannot copy from local to remote; use put() instead."
    assert sc.ln("vos://tkdir/link.txt", "vos://tkdir/moved.txt") == "OK"
    assert sc.get("vos://tkdir/link.txt", "") == "hello storage\n"
    assert sc.tag("vos://tkdir/moved.txt", "a note") == "OK"
    assert sc.saveAs("saved text", "vos://tkdir/saved.txt") == ["OK"]
    assert sc.get("vos://tkdir/saved.txt", "") == "saved text"
    assert sc.rm("vos://tkdir/link.txt") == "OK"
    assert sc.rm("vos://tkdir/link.txt") == "A Node does not exist with the requested URI."
    assert sc.rm("vos://tkdir") == "vos://tkdir is a directory."
    assert sc.rm("vos://") == "Error: operation not permitted"
    assert sc.rmdir("vos://tkdir/notes.txt") == "vos://tkdir/notes.txt is not a directory."
    assert sc.rm("vos://tkdir/*.txt") == ["OK"] * 4
    assert sc.rmdir("vos://tkdir") == "OK"
    assert "does not exist" in sc.ls("vos://tkdir")


@pytest.mark.system
def test_vospace_readable_fileobj_reads_storage_and_local_files(tk, login, tmp_path):
    """dl.helpers.utils' reader, as notebooks use it for a file in their storage."""
    import gzip

    from starbox.helpers.utils import vospace_readable_fileobj

    endpoint_or_skip(tk, "/storage/ls?name=vos://", login)
    packed = tmp_path / "stars.csv.gz"
    packed.write_bytes(gzip.compress(b"hip,hpmag\n32349,-1.0876\n"))
    assert sc.put(str(packed), "vos://stars.csv.gz", verbose=False) == ["OK"]
    with vospace_readable_fileobj("vos://stars.csv.gz", encoding="utf-8") as f:  # unpacked on the way
        assert f.read() == "hip,hpmag\n32349,-1.0876\n"
    with vospace_readable_fileobj(str(packed), encoding="binary") as f:  # a local file as well
        assert f.read() == b"hip,hpmag\n32349,-1.0876\n"
    with pytest.raises(OSError, match="does not exist"):
        with vospace_readable_fileobj("vos://no-such.csv"):
            pass
    assert sc.rm("vos://stars.csv.gz") == "OK"


@pytest.mark.system
def test_storage_large_file_streams(tk, login, tmp_path):
    endpoint_or_skip(tk, "/storage/ls?name=vos://", login)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024 + 17))
    assert sc.put(str(big), "vos://big.bin", verbose=False) == ["OK"]
    assert sc.stat("vos://big.bin")["size"] == big.stat().st_size
    back = tmp_path / "back.bin"
    assert sc.get("vos://big.bin", str(back), verbose=False) == ["OK"]
    assert hashlib.sha256(back.read_bytes()).digest() == hashlib.sha256(big.read_bytes()).digest()
    assert sc.rm("vos://big.bin") == "OK"


@pytest.mark.system
def test_storage_with_queries_and_services(tk, login, tmp_path):
    endpoint_or_skip(tk, "/storage/ls?name=vos://", login)
    assert qc.query(sql=SIRIUS_SQL, out="vos://tk_sirius.csv") == "OK"
    assert sc.get("vos://tk_sirius.csv", "") == SIRIUS_CSV
    assert qc.mydb_import("tk_from_vos", "vos://tk_sirius.csv") == "OK"
    assert qc.query(sql="SELECT hip FROM mydb://tk_from_vos") == "hip\n32349\n"
    assert qc.mydb_drop("tk_from_vos") == "OK"
    assert "does not exist" in qc.mydb_import("tk_from_vos", "vos://no_such.csv")
    # the service refuses to fetch from its own loopback (SSRF): the toolkit hands over the reason
    # (a load that succeeds, with fetch_allow_hosts, is in tests/test_storage.py::test_load)
    said = sc.load("vos://tk_hello.txt", tk.url + "/storage/")
    assert said.startswith(f"Error: could not fetch {tk.url}/storage/: 127.0.0.1 is a loopback address"), said
    assert "tk_hello.txt" not in sc.ls("vos://")
    assert sc.rm("vos://tk_sirius.csv") == "OK"
    assert "vos" in sc.services()
    assert "default" in sc.list_profiles()
    assert "default" in qc.list_profiles()


# --- metadata and conversion -----------------------------------------------------------------------

@pytest.mark.system
def test_metadata(tk):
    assert "Schema Name" in qc.schema() and "hipparcos" in qc.schema()
    assert "hpmag" in qc.schema("hipparcos.main")
    assert qc.services()
    qc.set_timeout_request(77)
    try:
        assert qc.get_timeout_request() == 77
    finally:
        qc.set_timeout_request(qc.DEF_TIMEOUT_REQUEST)


@pytest.mark.unit
def test_convert_matches_dl():
    csv = "a,b,a\n1,2.5,3\n4,5.5,6\n"
    assert convert(csv, "string") == "a,b,a_1\n1,2.5,3\n4,5.5,6\n"
    assert list(convert(csv).columns) == ["a", "b", "a_1"]
    assert convert(csv, "array").shape == (2, 3)
    assert convert(csv.encode(), "structarray").dtype.names == ("a", "b", "a_1")
    assert convert(csv, "table")["b"][1] == 5.5
    df = convert(csv.encode(), "pandas", na_values="Infinity")
    assert df["a_1"].tolist() == [3, 6]
    with pytest.raises(ValueError, match="unknown outfmt"):
        convert(csv, "excel")
    import pyarrow as pa

    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, pa.schema([("x", pa.int16())])) as writer:
        writer.write_batch(pa.record_batch([pa.array([1, 2], pa.int16())], names=["x"]))
    assert convert(sink.getvalue(), "pandas")["x"].dtype == np.int16
    assert json.loads(json.dumps(convert(sink.getvalue(), "string"))) == "x\n1\n2\n"
