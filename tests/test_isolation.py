"""Isolation is enforced by PostgreSQL: each user's SQL runs on a login of their own role."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def alice(api):
    token = api.add_user("iso_alice")
    with api.client(token) as c:
        r = c.get("/query/query", params={"sql": "SELECT 1 AS x, 'secret' AS note", "out": "mydb://private", "drop": "True"})
        assert r.status_code == 200, r.text
    return token


@pytest.fixture(scope="module")
def bob(api):
    return api.add_user("iso_bob")


def q(api, token, sql, **params):
    with api.client(token) as c:
        return c.get("/query/query", params={"sql": sql, **params})


def assert_refused(r, *words):
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.text.startswith("Error:") and "Traceback" not in r.text
    for w in words:
        assert w in r.text, r.text


@pytest.mark.api
def test_owner_reads_own_table(api, alice):
    r = q(api, alice, "SELECT note FROM mydb://private")
    assert r.status_code == 200 and r.text == "note\nsecret\n"


@pytest.mark.api
def test_other_user_cannot_read_or_change_mydb(api, alice, bob):
    assert_refused(q(api, bob, "SELECT * FROM mydb_iso_alice.private"), "permission denied")
    assert_refused(q(api, bob, "DROP TABLE mydb_iso_alice.private"), "permission denied")
    assert_refused(q(api, bob, "INSERT INTO mydb_iso_alice.private VALUES (2, 'x')"), "permission denied")
    assert_refused(q(api, None, "SELECT * FROM mydb_iso_alice.private"), "permission denied")


@pytest.mark.api
def test_anonymous_cannot_write(api):
    r = q(api, None, "SELECT 1 AS x", out="mydb://t")
    assert r.status_code in (400, 401) and "logged-in" in r.text
    # refused before PostgreSQL sees them: anonymous callers run queries only (starbox.query.guard)
    assert_refused(q(api, None, "CREATE TABLE public.t (x int)"), "CREATE TABLE statements are not allowed", "anonymous")
    assert_refused(q(api, None, "CREATE TEMP TABLE t (x int)"), "CREATE TABLE statements are not allowed", "anonymous")


@pytest.mark.api
def test_catalogs_cannot_be_changed(api, alice):
    for sql in ("DELETE FROM hipparcos.main", "UPDATE hipparcos.main SET hpmag = 0",
                "TRUNCATE hipparcos.main", "DROP TABLE hipparcos.main",
                "ALTER TABLE hipparcos.main ADD COLUMN x int", "INSERT INTO tbl_stat VALUES ('a','b',1,1,1,'','','')",
                "DELETE FROM tap_schema.published_columns", "UPDATE tap_schema.published_tables SET description = ''"):
        r = q(api, alice, sql)
        assert 400 <= r.status_code < 500 and ("permission denied" in r.text or "must be owner" in r.text), (sql, r.text)
    # TAP_SCHEMA's tables are views (db/010): PostgreSQL refuses to change them before it asks whose they are
    for sql in ("DELETE FROM tap_schema.columns", "INSERT INTO tap_schema.tables (table_name) VALUES ('x')"):
        r = q(api, alice, sql)
        assert 400 <= r.status_code < 500 and "cannot" in r.text and "view" in r.text, (sql, r.text)
    assert "hipparcos.main" in q(api, alice, "SELECT table_name FROM tap_schema.tables").text
    r = q(api, alice, "SELECT count(*) AS n FROM hipparcos.main")
    assert r.text == "n\n117955\n"


@pytest.mark.api
@pytest.mark.parametrize("sql", [
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('/')",
    "SELECT lo_import('/etc/passwd')",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY (SELECT 1) TO '/tmp/x'",
    "CREATE EXTENSION IF NOT EXISTS plpython3u",
    "ALTER ROLE starbox_u_iso_alice SUPERUSER",
    "CREATE ROLE evil",
])
def test_server_side_file_and_program_functions_are_refused(api, alice, sql):
    assert_refused(q(api, alice, sql))


@pytest.mark.api
@pytest.mark.parametrize("sql", [
    "SET ROLE starbox_service",
    "SET ROLE starbox_u_iso_bob",
    "SET ROLE postgres",
    "SELECT set_config('role', 'starbox_service', false)",
    "SELECT set_config('role', 'starbox_u_iso_bob', true), (SELECT count(*) FROM mydb_iso_bob.t)",
    "SELECT set_config('role', 'starbox_service', true), query_to_xml('SELECT * FROM starbox.tokens', true, false, '')",
    "SET SESSION AUTHORIZATION starbox_service",
])
def test_set_role_cannot_escape(api, alice, bob, sql):
    assert_refused(q(api, alice, sql))


@pytest.mark.api
def test_reset_role_stays_the_user(api, alice):
    r = q(api, alice, "RESET ROLE")
    assert r.status_code == 403 and "RESET ROLE statements are not allowed" in r.text  # the guard, first
    r = q(api, alice, "SELECT current_user AS u, session_user AS s")
    assert r.text == "u,s\nstarbox_u_iso_alice,starbox_u_iso_alice\n"
    assert_refused(q(api, alice, "SELECT count(*) FROM starbox.tokens"), "permission denied")
    assert_refused(q(api, alice, "SELECT count(*) FROM starbox.accounts"), "permission denied")


@pytest.mark.api
def test_session_settings_do_not_leak_into_the_next_query(api, alice):
    # SET is refused now (starbox.query.guard); what a session can still keep is a temp table
    assert_refused(q(api, alice, "SET search_path = hipparcos"), "SET statements are not allowed")
    assert_refused(q(api, alice, "SET ROLE starbox_public"), "SET ROLE statements are not allowed")
    for _ in range(6):  # more than the pool size, so the same connection is certainly reused
        assert q(api, alice, "CREATE TEMP TABLE leak (x int)").status_code == 200
    r = q(api, alice, "SELECT current_user AS u, to_regclass('pg_temp.leak') IS NULL AS gone")
    assert r.text == "u,gone\nstarbox_u_iso_alice,t\n"


@pytest.mark.api
def test_statement_timeout_ends_a_runaway_query(api, alice):
    with api.client(alice) as c:
        r = c.get("/query/query", params={"sql": "SELECT pg_sleep(30)"}, headers={"X-DL-TimeoutRequest": "2"})
    assert_refused(r, "time limit")


@pytest.mark.api
def test_one_statement_per_request(api, alice):
    assert_refused(q(api, alice, "SELECT 1; DROP TABLE mydb://private"), "one statement")
    r = q(api, alice, "SELECT ';' AS semicolon")  # a ';' inside a literal is fine
    assert r.text == "semicolon\n;\n"


@pytest.mark.system
def test_row_cap_answers_clearly(api):
    import dataclasses

    import httpx

    from conftest import free_port, start_service

    s = dataclasses.replace(api.settings, service_port=free_port())
    proc = start_service(s, STARBOX_ROW_CAP="1000")
    try:
        r = httpx.get(f"{s.service_url}/query/query", params={"sql": "SELECT hip FROM hipparcos.main"})
        assert r.status_code == 413 and "more than 1,000 rows" in r.text
        r = httpx.get(f"{s.service_url}/query/query", params={"sql": "SELECT hip FROM hipparcos.main LIMIT 1000"})
        assert r.status_code == 200 and len(r.text.splitlines()) == 1001
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.api
@pytest.mark.parametrize("params,headers", [
    ({}, {}),
    ({"sql": ""}, {}),
    ({"sql": "SELECT 1", "ofmt": "xlsx"}, {}),
    ({"sql": "SELECT 1"}, {"X-DL-TimeoutRequest": "soon"}),
    ({"sql": "SELECT 1"}, {"X-DL-AuthToken": "not.a.token"}),
    ({"sql": "SELECT 1"}, {"X-DL-AuthToken": "someone.1.1.$1$abcdefghijklmnopqrstuvwxyz"}),
    ({"adql": "SELEC x FROM"}, {}),
    ({"sql": "SELECT * FROM mydb://t"}, {}),
    ({"sql": "SELECT 1", "async": "True", "out": "mydb://Bad-Name"}, {}),
])
def test_bad_query_input_never_500(api, params, headers):
    with api.client() as c:
        r = c.get("/query/query", params=params, headers=headers)
    assert 400 <= r.status_code < 500, (params, r.status_code, r.text)
    assert r.text.startswith("Error") and "Traceback" not in r.text


@pytest.mark.api
@pytest.mark.parametrize("path", ["/query/status", "/query/results", "/query/error", "/query/abort"])
def test_job_calls_with_unknown_or_foreign_jobs(api, alice, bob, path):
    with api.client(alice) as c:
        jobid = c.get("/query/query", params={"sql": "SELECT 1 AS x", "async": "True"}).text
    with api.client(bob) as c:
        r = c.get(path, params={"jobid": jobid})
        assert r.status_code == 404, r.text  # bob cannot see alice's job
        r = c.get(path, params={"jobid": "nope"})
        assert r.status_code == 404
        r = c.get(path)
        assert r.status_code == 404
