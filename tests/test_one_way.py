"""One way per job (issue 12, item 4): one translation of database errors, one boolean parser,
one rule for staged upload names; each the same wherever it is used."""

from __future__ import annotations

import psycopg
import pytest

from starbox import db_errors, storage_home
from starbox.errors import Conflict, Forbidden, NotFound, StarboxError, Unavailable
from starbox.service import flags


@pytest.mark.unit
def test_database_errors_read_the_same_everywhere():
    cancelled = db_errors.user_error(psycopg.errors.QueryCanceled("canceling statement due to statement timeout"),
                                     timeout_s=2.0)
    assert str(cancelled) == "Error: the query was stopped: it ran past its time limit of 2 s"
    assert type(cancelled) is StarboxError and cancelled.status == 400
    assert str(db_errors.user_error(psycopg.errors.QueryCanceled())) == \
        "Error: the query was stopped: it ran past its time limit"
    missing = db_errors.user_error(psycopg.errors.UndefinedTable('relation "t" does not exist'), shown="mydb://t")
    assert isinstance(missing, NotFound) and str(missing) == 'relation "mydb://t" not known'
    assert isinstance(db_errors.user_error(psycopg.errors.DuplicateTable("exists")), Conflict)
    assert isinstance(db_errors.user_error(psycopg.errors.InsufficientPrivilege("no")), Forbidden)
    lost = db_errors.user_error(psycopg.OperationalError("server closed the connection"))
    assert isinstance(lost, Unavailable) and str(lost) == db_errors.LOST
    assert db_errors.message_of(RuntimeError("x")) == "Error: internal error (RuntimeError)"
    with pytest.raises(Forbidden):
        with db_errors.translated():
            raise psycopg.errors.InsufficientPrivilege("permission denied for table x")


@pytest.mark.unit
@pytest.mark.parametrize("spelling, value", [("True", True), ("t", True), ("1", True), ("yes", True), ("on", True),
                                             ("False", False), ("f", False), ("0", False), ("no", False),
                                             ("off", False)])
def test_one_boolean_parser(spelling, value):
    assert flags.parse(spelling, not value, "drop") is value
    assert flags.parse(spelling.upper(), not value, "drop") is value


@pytest.mark.unit
def test_boolean_parser_defaults_and_refusals():
    assert flags.parse(None, True) is True and flags.parse("", False) is False and flags.parse("None", True) is True
    with pytest.raises(StarboxError, match="drop must be True or False, not 'maybe'"):
        flags.parse("maybe", False, "drop")
    assert flags.answer(True) == "True" and flags.answer(False) == "False"


@pytest.mark.unit
def test_one_rule_names_staged_uploads():
    assert storage_home.staged_name("data.csv") == "data.csv"
    assert storage_home.staged_name("/home/me/data.csv") == "data.csv"  # the client's local path
    assert storage_home.staged_name("C:\\me\\data.csv") == "data.csv"
    for bad in ("", "  ", "../x.csv", ".starbox-part-1", "a\x00b", "x" * 201):
        with pytest.raises(StarboxError):
            storage_home.staged_name(bad)


@pytest.mark.api
def test_drop_means_the_same_on_query_and_create(api):
    """`drop=t` once meant False on /query/query and True on /query/create."""
    token = api.add_user("oneway_drop")
    with api.client(token) as c:
        assert c.get("/query/create", params={"table": "twice", "schema": "x,integer", "drop": "t"}).text == "OK"
        r = c.get("/query/create", params={"table": "twice", "schema": "x,integer", "drop": "t"})
        assert r.status_code == 200 and r.text == "OK", r.text
        sql = "SELECT 1 AS x"
        assert c.get("/query/query", params={"sql": sql, "out": "mydb://again"}).text == "OK"
        r = c.get("/query/query", params={"sql": sql, "out": "mydb://again", "drop": "t"})
        assert r.status_code == 200 and r.text == "OK", r.text
        r = c.get("/query/query", params={"sql": sql, "out": "mydb://again", "drop": "f"})
        assert r.status_code == 400 and "already exists" in r.text, r.text
        for path, params in (("/query/query", {"sql": sql, "out": "mydb://again", "drop": "perhaps"}),
                             ("/query/create", {"table": "twice", "schema": "x,integer", "drop": "perhaps"})):
            r = c.get(path, params=params)
            assert r.status_code == 400 and "drop must be True or False" in r.text, (path, r.text)
