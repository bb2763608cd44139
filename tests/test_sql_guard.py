"""Issue 11, items 1, 5, 10 and 7 (large objects): the attacks of the attack run, each with its refusal.

User SQL is parsed with PostgreSQL's own grammar (starbox.query.guard); user roles and
starbox_anon cannot log in over TCP (pg_hba); the catalogs hide what PostgreSQL lets us hide
(db/008_catalog_privacy.sql).
"""

from __future__ import annotations

import time

import psycopg
import pytest

from conftest import until
from starbox import database, keys
from starbox.accounts import role_name
from starbox.cluster import Cluster
from starbox.cluster.control import HBA_KEEP
from starbox.errors import Forbidden, StarboxError
from starbox.query import guard

E_STRING_ATTACK = "SET application_name = E'\\'';COMMIT;SELECT pg_sleep(6) --'"


@pytest.fixture(scope="module")
def carol(api):
    token = api.add_user("guard_carol")
    with api.client(token) as c:
        r = c.get("/query/query", params={"sql": "SELECT 1 AS x, 'hers' AS note", "out": "mydb://kept", "drop": "True"})
        assert r.status_code == 200, r.text
    return token


@pytest.fixture(params=["anonymous", "user"])
def caller(request, carol):
    return None if request.param == "anonymous" else carol


def q(api, token, sql, **params):
    headers = params.pop("headers", {})
    with api.client(token) as c:
        return c.get("/query/query", params={"sql": sql, **params}, headers=headers)


def refused(r, status, *words):
    assert r.status_code == status, (r.status_code, r.text)
    assert r.text.startswith("Error:") and "Traceback" not in r.text and "\n" not in r.text.strip(), r.text
    for w in words:
        assert w in r.text, r.text


def role_defaults(admin, role):
    row = admin.execute("SELECT setconfig FROM pg_db_role_setting WHERE setrole = %s::regrole AND setdatabase = 0",
                        (role,)).fetchone()
    return sorted(row[0]) if row else []


def socket_login(settings, role):
    with psycopg.connect(host=str(settings.run_dir), port=settings.pg_port, dbname=settings.db_name, user=role,
                         password=keys.role_password(settings, role), connect_timeout=5) as conn:
        return conn.execute("SELECT current_user").fetchone()[0]


# --- item 1a: a role cannot rewrite itself ---------------------------------------------------

@pytest.mark.api
def test_a_role_cannot_change_its_own_password(api, admin, caller):
    role = "starbox_anon" if caller is None else role_name("guard_carol")
    r = q(api, caller, "ALTER ROLE CURRENT_USER PASSWORD 'x'")
    refused(r, 403, "ALTER ROLE statements are not allowed here")
    # the role's password is still the service's: a new connection logs in, queries answer
    assert socket_login(api.settings, role) == role
    assert q(api, caller, "SELECT 1 AS one").text == "one\n1\n"


@pytest.mark.api
def test_a_role_cannot_change_its_own_defaults(api, admin, caller):
    role = "starbox_anon" if caller is None else role_name("guard_carol")
    before = role_defaults(admin, role)
    assert any(s.startswith("statement_timeout=") for s in before)
    for sql in ("ALTER ROLE CURRENT_USER SET statement_timeout = 0",
                "ALTER ROLE CURRENT_USER RESET statement_timeout",
                "ALTER USER CURRENT_USER SET work_mem = '4GB'",
                f"ALTER ROLE {role} SET statement_timeout = 0"):
        refused(q(api, caller, sql), 403, "ALTER ROLE statements are not allowed here")
    assert role_defaults(admin, role) == before


# --- item 5: the one-statement check cannot be bypassed ----------------------------------

@pytest.mark.api
def test_the_e_string_attack_runs_nothing(api, caller):
    t0 = time.monotonic()
    r = q(api, caller, E_STRING_ATTACK)
    refused(r, 403, "multiple statements are not allowed here", "found 3: SET, COMMIT, SELECT")
    assert time.monotonic() - t0 < 5  # pg_sleep(6) never ran


@pytest.mark.api
@pytest.mark.parametrize("sql", [
    E_STRING_ATTACK,
    "SELECT 1; COMMIT",
    "SELECT $$;$$; COMMIT; SELECT pg_sleep(6)",
    "SELECT $a$ $$ ; $a$; COMMIT",
    "SELECT /* nested /* comment */ ; */ 1; COMMIT",
    "SELECT U&'\\0027'; COMMIT",
    "SELECT 'a'\n'b'; COMMIT",
    "SELECT \"x;\"\"\" FROM (SELECT 1 AS \"x;\"\"\") t; COMMIT",
])
def test_every_lexical_trick_is_seen_by_the_parser(api, sql):
    refused(q(api, None, sql), 403, "one statement per query")


@pytest.mark.api
def test_the_timeout_holds_after_the_attacks(api, admin, caller):
    for sql in (E_STRING_ATTACK, "SET statement_timeout = 0", "SET LOCAL statement_timeout = 0",
                "RESET statement_timeout", "COMMIT", "BEGIN",
                "SELECT set_config('statement_timeout', '0', false)",
                "SELECT pg_catalog.set_config('statement_timeout', '0', true), pg_sleep(6)",
                "UPDATE pg_settings SET setting = '0' WHERE name = 'statement_timeout'",
                "ALTER ROLE CURRENT_USER SET statement_timeout = 0"):
        assert 400 <= q(api, caller, sql).status_code < 500, sql
    t0 = time.monotonic()
    r = q(api, caller, "SELECT pg_sleep(20)", headers={"X-DL-TimeoutRequest": "2"})
    refused(r, 400, "time limit")
    assert time.monotonic() - t0 < 6
    assert "statement_timeout=600s" in role_defaults(admin, "starbox_anon")


@pytest.mark.api
@pytest.mark.parametrize("sql,kind", [
    ("SET application_name = 'x'", "SET statements"),
    ("SET LOCAL statement_timeout = 0", "SET statements"),
    ("RESET ALL", "RESET ALL statements"),
    ("SET ROLE starbox_service", "SET ROLE statements"),
    ("RESET ROLE", "RESET ROLE statements"),
    ("SET SESSION AUTHORIZATION starbox_service", "SET SESSION AUTHORIZATION statements"),
    ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET TRANSACTION statements"),
    ("SHOW statement_timeout", "SHOW statements"),
    ("BEGIN", "BEGIN statements"),
    ("START TRANSACTION", "START TRANSACTION statements"),
    ("COMMIT", "COMMIT statements"),
    ("ROLLBACK", "ROLLBACK statements"),
    ("SAVEPOINT a", "SAVEPOINT statements"),
    ("RELEASE SAVEPOINT a", "RELEASE SAVEPOINT statements"),
    ("PREPARE TRANSACTION 'x'", "PREPARE TRANSACTION statements"),
    ("COPY hipparcos.main TO STDOUT", "COPY statements"),
    ("COPY (SELECT 1) TO PROGRAM 'id'", "COPY statements"),
    ("DO $$BEGIN PERFORM pg_sleep(1); END$$", "DO statements"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "CREATE FUNCTION statements"),
    ("CREATE PROCEDURE p() LANGUAGE sql AS 'SELECT 1'", "CREATE PROCEDURE statements"),
    ("CALL p()", "CALL statements"),
    ("GRANT SELECT ON hipparcos.main TO PUBLIC", "GRANT statements"),
    ("REVOKE SELECT ON hipparcos.main FROM PUBLIC", "REVOKE statements"),
    ("GRANT starbox_service TO CURRENT_USER", "GRANT ROLE statements"),
    ("CREATE ROLE evil", "CREATE ROLE statements"),
    ("ALTER ROLE starbox_anon RENAME TO x", "ALTER ROLE ... RENAME statements"),
    ("COMMENT ON ROLE starbox_anon IS 'x'", "COMMENT ON ROLE statements"),
    ("LISTEN x", "LISTEN statements"),
    ("NOTIFY x", "NOTIFY statements"),
    ("LOCK hipparcos.main", "LOCK statements"),
    ("VACUUM hipparcos.main", "VACUUM statements"),
    ("PREPARE p AS SELECT 1", "PREPARE statements"),
    ("EXECUTE p", "EXECUTE statements"),
    ("DECLARE c CURSOR FOR SELECT 1", "DECLARE CURSOR statements"),
    ("DISCARD ALL", "DISCARD statements"),
    ("CHECKPOINT", "CHECKPOINT statements"),
    ("LOAD 'plpgsql'", "LOAD statements"),
    ("ALTER SYSTEM SET statement_timeout = 0", "ALTER SYSTEM statements"),
    ("ALTER DATABASE starbox SET statement_timeout = 0", "ALTER DATABASE statements"),
    ("CREATE EXTENSION plpython3u", "CREATE EXTENSION statements"),
    ("CREATE SCHEMA evil", "CREATE SCHEMA statements"),
    ("DROP FUNCTION q3c_version()", "DROP FUNCTION statements"),
    ("DROP SCHEMA hipparcos", "DROP SCHEMA statements"),
    ("EXPLAIN ANALYZE COPY hipparcos.main TO STDOUT", None),  # not even EXPLAIN's grammar allows it
])
def test_statement_kinds_a_user_does_not_need_are_refused(api, caller, sql, kind):
    r = q(api, caller, sql)
    if kind is None:
        refused(r, 400, "syntax error")
    else:
        refused(r, 403, f"Error: {kind} are not allowed here")


@pytest.mark.api
@pytest.mark.parametrize("sql", [
    "SELECT set_config('role', 'starbox_service', false)",
    "SELECT 1 FROM hipparcos.main WHERE set_config('work_mem', '4GB', true) IS NOT NULL LIMIT 1",
    "WITH s AS (SELECT pg_catalog.Set_Config('a.b', 'c', false)) SELECT * FROM s",
    "EXPLAIN ANALYZE SELECT set_config('statement_timeout', '0', false)",
])
def test_set_config_is_refused_wherever_it_hides(api, caller, sql):
    refused(q(api, caller, sql), 403, "set_config() calls are not allowed here")


@pytest.mark.api
def test_set_config_in_a_table_definition_is_refused(api, carol):
    sql = "CREATE TABLE mydb://sneaky (x text DEFAULT set_config('statement_timeout', '0', false))"
    refused(q(api, carol, sql), 403, "set_config() calls are not allowed here")


@pytest.mark.api
def test_anonymous_callers_run_queries_only(api):
    for sql, kind in (("INSERT INTO hipparcos.main (hip) VALUES (1)", "INSERT"),
                      ("UPDATE hipparcos.main SET hpmag = 0", "UPDATE"),
                      ("DELETE FROM hipparcos.main", "DELETE"),
                      ("WITH d AS (DELETE FROM hipparcos.main RETURNING 1) SELECT count(*) FROM d", "DELETE"),
                      ("EXPLAIN ANALYZE DELETE FROM hipparcos.main", "DELETE"),
                      ("CREATE TABLE public.t (x int)", "CREATE TABLE"),
                      ("CREATE TEMP TABLE t (x int)", "CREATE TABLE"),
                      ("SELECT 1 INTO TEMP t", "SELECT INTO"),
                      ("CREATE TABLE t AS SELECT 1", "CREATE TABLE AS"),
                      ("DROP TABLE hipparcos.main", "DROP TABLE"),
                      ("ANALYZE hipparcos.main", "ANALYZE")):
        refused(q(api, None, sql), 403, f"{kind} statements are not allowed here", "anonymous")
    for sql in ("SELECT 1 AS x", "WITH a AS (SELECT 1 AS x) SELECT * FROM a", "VALUES (1)",
                "(SELECT 1 AS x) UNION ALL (SELECT 2)", "TABLE tap_schema.schemas",
                "EXPLAIN SELECT * FROM hipparcos.main"):
        r = q(api, None, sql)
        assert r.status_code == 200, (sql, r.text)


@pytest.mark.api
def test_a_user_keeps_every_statement_kind_they_need(api, carol):
    steps = [
        ("CREATE TABLE mydb://g (id int PRIMARY KEY, mag real)", "CREATE TABLE"),
        ("INSERT INTO mydb://g VALUES (1, 5.5), (2, 7.0)", "INSERT 0 2"),
        ("UPDATE mydb://g SET mag = 6 WHERE id = 1", "UPDATE 1"),
        ("DELETE FROM mydb://g WHERE id = 2", "DELETE 1"),
        ("CREATE INDEX g_mag ON mydb://g (mag)", "CREATE INDEX"),
        ("ALTER TABLE mydb://g ADD COLUMN note text", "ALTER TABLE"),
        ("ALTER TABLE mydb://g RENAME COLUMN note TO remark", "ALTER TABLE"),
        ("COMMENT ON TABLE mydb://g IS 'my stars'", "COMMENT"),
        ("CREATE VIEW mydb://bright AS SELECT * FROM mydb://g WHERE mag < 7", "CREATE VIEW"),
        ("CREATE TABLE mydb://g2 AS SELECT hip, hpmag FROM hipparcos.main LIMIT 3", "SELECT 3"),
        ("ANALYZE mydb://g2", "ANALYZE"),
        ("SELECT id, mag FROM mydb://bright;", "id,mag\n1,6\n"),
        ("TRUNCATE mydb://g2", "TRUNCATE TABLE"),
        ("DROP VIEW mydb://bright", "DROP VIEW"),
        ("DROP TABLE mydb://g2", "DROP TABLE"),
        ("DROP TABLE mydb://g", "DROP TABLE"),
    ]
    for sql, answer in steps:
        r = q(api, carol, sql)
        assert r.status_code == 200 and r.text.strip() == answer.strip(), (sql, r.status_code, r.text)
        if answer == "CREATE VIEW":  # EXPLAIN answers with its plan
            r = q(api, carol, "EXPLAIN SELECT * FROM mydb://bright")
            assert r.status_code == 200 and r.text.startswith("QUERY PLAN\n") and "Scan" in r.text, r.text


@pytest.mark.api
def test_returning_is_refused_before_it_runs(api, carol):
    """A RETURNING clause would bring its rows back whole, past the row cap and the row-size bound."""
    assert q(api, carol, "CREATE TABLE mydb://ret (x int)").status_code == 200
    try:
        _returning_refused(api, carol)
    finally:
        assert q(api, carol, "DROP TABLE mydb://ret").status_code == 200


def _returning_refused(api, carol):
    for sql, kind in (("INSERT INTO mydb://ret SELECT generate_series(1, 5) RETURNING *", "INSERT"),
                      ("UPDATE mydb://ret SET x = 0 RETURNING x", "UPDATE"),
                      ("DELETE FROM mydb://ret RETURNING x", "DELETE")):
        refused(q(api, carol, sql), 400, f"{kind} ... RETURNING is not supported here")
    assert q(api, carol, "SELECT count(*) AS n FROM mydb://ret").text == "n\n0\n"


@pytest.mark.api
def test_ddl_outside_the_own_schema_is_refused_by_postgresql(api, carol):
    r = q(api, carol, "CREATE TABLE hipparcos.mine (x int)")
    refused(r, 403, "permission denied")
    r = q(api, carol, "CREATE VIEW public.v AS SELECT 1")
    refused(r, 403, "permission denied")


@pytest.mark.api
def test_async_jobs_are_checked_at_submission(api, caller):
    with api.client(caller) as c:
        r = c.get("/query/query", params={"sql": "ALTER ROLE CURRENT_USER SET statement_timeout = 0", "async": "True"})
    refused(r, 403, "ALTER ROLE statements are not allowed here")
    with api.client(caller) as c:
        r = c.get("/query/query", params={"sql": E_STRING_ATTACK, "async": "True"})
    refused(r, 403, "multiple statements")


@pytest.mark.api
def test_syntax_errors_are_postgresql_s_own_message(api):
    refused(q(api, None, "SELEC 1"), 400, 'syntax error at or near "SELEC"')
    refused(q(api, None, "SELECT 'open"), 400, "unterminated quoted string")
    refused(q(api, None, "-- a comment only"), 400, "no SQL statement")


@pytest.mark.api
def test_adql_translations_pass_the_guard(api):
    with api.client() as c:
        r = c.get("/query/query", params={"adql": "SELECT TOP 2 hip FROM hipparcos.main WHERE "
                                                  "CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 10, 5)) = 1"})
    assert r.status_code == 200 and r.text.startswith("hip\n"), r.text


@pytest.mark.unit
def test_guard_unit_cases():
    # What the service runs is exactly the one statement, without what follows it.
    assert guard.check("SELECT 1; -- bye", anonymous=True) == guard.Checked("SELECT 1", True)
    assert guard.check("-- héllo\nSELECT 'é;' AS x; /* é */", anonymous=True) == guard.Checked("SELECT 'é;' AS x", True)
    assert not guard.check("EXPLAIN SELECT 1", anonymous=True).is_query
    assert not guard.check("SELECT 1 INTO t", anonymous=False).is_query
    with pytest.raises(Forbidden, match="found 2: SELECT, SELECT"):
        guard.check("SELECT 'é' ; SELECT 2", anonymous=False)
    with pytest.raises(StarboxError, match="at character 1"):
        guard.check("SELEC 1", anonymous=False)
    deep = "SELECT " + "(" * 50_000 + "1" + ")" * 50_000
    with pytest.raises(StarboxError) as exc:
        guard.check(deep, anonymous=True)
    assert exc.value.status == 400


# --- item 1b: no TCP logins for user roles ---------------------------------------------

def tcp_login(settings, role, password):
    return psycopg.connect(host="127.0.0.1", port=settings.pg_port, dbname=settings.db_name, user=role,
                           password=password, connect_timeout=5)


def can_log_in(settings, role):
    try:
        tcp_login(settings, role, keys.role_password(settings, role)).close()
        return True
    except psycopg.OperationalError:
        return False


@pytest.mark.api
def test_a_self_set_password_opens_nothing_over_tcp(api, admin, carol):
    s, role = api.settings, role_name("guard_carol")
    # as if the user had managed to set a password of their own
    admin.execute(f'ALTER ROLE "{role}" PASSWORD \'chosen-by-carol\'')
    try:
        for who, pw in ((role, "chosen-by-carol"), ("starbox_anon", keys.role_password(s, "starbox_anon")),
                        ("starbox_service", keys.service_password(s))):
            with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
                tcp_login(s, who, pw)
    finally:
        admin.execute(f'ALTER ROLE "{role}" PASSWORD \'{keys.role_password(s, role)}\'')
    password = Cluster(s).password_file.read_text().strip()
    with tcp_login(s, "postgres", password) as conn:  # the admin's own door stays
        assert conn.execute("SELECT current_user").fetchone()[0] == "postgres"


@pytest.mark.api
def test_a_cluster_made_by_an_earlier_version_is_closed_at_start(api, admin, carol):
    s, role = api.settings, role_name("guard_carol")
    cluster = Cluster(s)
    hba = cluster.pgdata / "pg_hba.conf"
    old = ("# Written by Starbox\nlocal all postgres peer map=starbox\nlocal all all scram-sha-256\n"
           "host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n")
    cluster._write_owned(hba, old)
    admin.execute("SELECT pg_reload_conf()")
    with tcp_login(s, role, keys.role_password(s, role)):
        pass  # the hole the attack run found
    assert cluster.init() is False  # what `starbox up` does first: rewrite, reload the running server
    text = hba.read_text()
    assert "host all all" not in text and HBA_KEEP in text
    assert until(lambda: not can_log_in(s, role))  # pg_ctl reload signals; the server rereads soon
    with pytest.raises(psycopg.OperationalError, match="no pg_hba.conf entry"):
        tcp_login(s, role, keys.role_password(s, role))
    assert socket_login(s, role) == role
    assert q(api, carol, "SELECT note FROM mydb://kept").text == "note\nhers\n"
    assert cluster._write_hba() is False  # the next start leaves it alone


@pytest.mark.api
def test_admin_lines_below_the_marker_are_kept(api):
    cluster = Cluster(api.settings)
    hba = cluster.pgdata / "pg_hba.conf"
    before = hba.read_text()
    extra = "host replication starbox_replicator 192.0.2.7/32 scram-sha-256"
    cluster._write_owned(hba, before + extra + "\n")
    try:
        cluster._write_hba()
        assert hba.read_text().endswith(HBA_KEEP + "\n" + extra + "\n")
    finally:
        cluster._write_owned(hba, before)


# --- item 10 and 7: catalog privacy, no large objects ------------------------------------

@pytest.mark.api
@pytest.mark.parametrize("sql,what", [
    ("SELECT rolname FROM pg_roles", "pg_roles"),
    ("SELECT usename FROM pg_user", "pg_user"),
    ("SELECT groname FROM pg_group", "pg_group"),
    ("SELECT roleid, member FROM pg_auth_members", "pg_auth_members"),
    ("SELECT setconfig FROM pg_db_role_setting", "pg_db_role_setting"),
    ("SELECT usename, client_addr, query FROM pg_stat_activity", "pg_stat_activity"),
    ("SELECT pg_stat_get_backend_userid(1)", "pg_stat_get_backend_userid"),
    ("SELECT * FROM pg_stat_get_activity(NULL)", "pg_stat_get_activity"),
    ("SELECT proname, prosrc FROM pg_proc", "pg_proc"),
    ("SELECT * FROM pg_proc", "pg_proc"),
    ("SELECT pg_get_functiondef('q3c_version()'::regprocedure)", "pg_get_functiondef"),
    ("SELECT pg_terminate_backend(pg_backend_pid())", "pg_terminate_backend"),
    ("SELECT pg_cancel_backend(pg_backend_pid())", "pg_cancel_backend"),
    ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
    ("SELECT lo_create(0)", "lo_create"),
    ("SELECT lo_creat(-1)", "lo_creat"),
    ("SELECT lo_put(1, 0, 'x')", "lo_put"),
    ("SELECT lo_import('/etc/hostname')", "lo_import"),
])
def test_catalogs_hide_what_postgresql_lets_us_hide(api, caller, sql, what):
    refused(q(api, caller, sql), 403, "permission denied", what)


@pytest.mark.api
def test_what_stays_visible_still_works(api, carol):
    # the service's own look-ups run as the caller: MyDB listing, TAP_SCHEMA, the schema call
    with api.client(carol) as c:
        assert "kept,created:" in c.get("/query/list").text
        assert c.get("/query/list", params={"table": "kept"}).text.startswith("x,integer")
        r = c.get("/query/schema", params={"value": "hipparcos.main"})
        assert r.status_code == 200 and "hip" in r.text
    r = q(api, carol, "SELECT proname FROM pg_proc WHERE proname = 'q3c_ang2ipix' LIMIT 1")
    assert r.text == "proname\nq3c_ang2ipix\n"  # signatures stay, source does not
    # information_schema filters by privilege: carol's own table, not another user's
    r = q(api, carol, "SELECT table_schema || '.' || table_name AS t FROM information_schema.tables "
                          "WHERE table_schema LIKE 'mydb\\_%' ORDER BY 1")
    assert r.text == "t\nmydb_guard_carol.kept\n", r.text
    r = q(api, None, "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema LIKE 'mydb\\_%'")
    assert r.text == "n\n0\n"
    assert q(api, None, "SELECT current_setting('statement_timeout') <> '' AS ok").text == "ok\nt\n"


@pytest.mark.api
def test_migration_removed_anonymous_large_objects_and_is_idempotent(starbox):
    with database.connect_admin(starbox) as conn:
        assert conn.execute("SELECT count(*) FROM pg_largeobject_metadata "
                            "WHERE lomowner = 'starbox_anon'::regrole").fetchone()[0] == 0
        with conn.transaction():  # applying it again changes nothing and fails nothing
            conn.execute((starbox.db_dir / "008_catalog_privacy.sql").read_text())
        acl = conn.execute("SELECT relacl::text FROM pg_class WHERE oid = 'pg_catalog.pg_roles'::regclass").fetchone()[0]
        assert "=r/" not in acl
