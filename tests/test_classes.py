"""Temporary class accounts (`starbox accounts class ...`) through the CLI, checked against the
live service: the students log in and query, the end of the class locks them out with a plain
message, and removing the class leaves nothing behind."""

from __future__ import annotations

import csv
import os

import pytest

from conftest import run_cli
from starbox import database, storage_home

pytestmark = pytest.mark.system

CLASS = "astro101"


def _login(service, user: str, password: str):
    with service.client() as c:
        return c.get("/auth/login", params={"username": user}, headers={"X-DL-Password": password})


def _left_behind(settings, users: list[str]) -> dict:
    with database.connect_admin(settings) as conn:
        return {
            "accounts": conn.execute("SELECT count(*) FROM starbox.accounts WHERE username = ANY(%s)",
                                     (users,)).fetchone()[0],
            "roles": conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = ANY(%s)",
                                  ([f"starbox_u_{u}" for u in users],)).fetchone()[0],
            "schemas": conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = ANY(%s)",
                                    ([f"mydb_{u}" for u in users],)).fetchone()[0],
            "folders": sum(storage_home.root(settings, u).exists() for u in users),
        }


def test_a_class_from_start_to_end(service, tmp_path):
    s = service.settings
    sheet = tmp_path / "sheet.csv"
    r = run_cli(s, "accounts", "class", "add", CLASS, "--students", "3", "--days", "7", "--out", str(sheet))
    assert r.returncode == 0, r.stderr
    assert "astro101_01" in r.stdout and "3 accounts" in r.stdout
    assert os.stat(sheet).st_mode & 0o777 == 0o600
    rows = list(csv.DictReader(sheet.open()))
    users = [row["username"] for row in rows]
    assert users == ["astro101_01", "astro101_02", "astro101_03"]
    assert len({row["password"] for row in rows}) == 3

    # a student logs in, queries and has a MyDB and a storage tree of their own
    token = _login(service, users[0], rows[0]["password"]).text
    assert token.startswith("astro101_01.")
    with service.client(token) as c:
        assert c.get("/query/query", params={"sql": "SELECT 1 AS one", "out": "mydb://t"}).text == "OK"
        assert c.get("/query/list").text.startswith("t")
    assert storage_home.root(s, users[0]).is_dir()
    assert _login(service, users[1], rows[0]["password"]).status_code == 401  # passwords differ

    listing = run_cli(s, "accounts", "class", "list")
    assert listing.returncode == 0 and CLASS in listing.stdout and "active" in listing.stdout

    # the same class again, or a bad request: one line each, nothing made
    again = run_cli(s, "accounts", "class", "add", CLASS, "-n", "2", "--out", str(tmp_path / "again.csv"))
    assert again.returncode == 1 and "class astro101 already exists" in again.stderr
    assert not (tmp_path / "again.csv").exists()
    for args, message in [(["Bad!", "-n", "2"], "invalid class name"),
                          (["zero", "-n", "0"], "1 to 500 students"),
                          (["long", "-n", "2", "--days", "999"], "at most 366 days")]:
        bad = run_cli(s, "accounts", "class", "add", *args, "--out", str(tmp_path / "bad.csv"))
        assert bad.returncode == 1 and message in bad.stderr and "Traceback" not in bad.stderr, bad.stderr
    assert run_cli(s, "accounts", "class", "add", CLASS, "-n", "2", "--out", str(sheet)).returncode == 1  # no overwrite

    # the end: logins are refused with the reason, and open sessions stop working
    ended = run_cli(s, "accounts", "class", "extend", CLASS, "--days", "0")
    assert ended.returncode == 0, ended.stderr
    r = _login(service, users[1], rows[1]["password"])
    assert r.status_code == 401 and "Account expired on" in r.text and "instructor" in r.text
    with service.client(token) as c:
        assert c.get("/query/query", params={"sql": "SELECT 1"}).status_code == 401
        assert c.get("/auth/isValidUser", params={"user": users[0]}).text == "False"
    assert "ended" in run_cli(s, "accounts", "class", "list").stdout

    # extended again: the same passwords work
    assert run_cli(s, "accounts", "class", "extend", CLASS, "--days", "1").returncode == 0
    assert _login(service, users[2], rows[2]["password"]).status_code == 200
    assert run_cli(s, "accounts", "class", "extend", CLASS, "--days", "0").returncode == 0

    # purge removes ended classes with everything they had
    purged = run_cli(s, "accounts", "class", "purge", "--yes")
    assert purged.returncode == 0 and CLASS in purged.stdout, purged.stderr
    assert _left_behind(s, users) == {"accounts": 0, "roles": 0, "schemas": 0, "folders": 0}
    gone = run_cli(s, "accounts", "class", "remove", CLASS, "--yes")
    assert gone.returncode == 1 and "no class named 'astro101'" in gone.stderr


def test_remove_a_running_class(service, tmp_path):
    s = service.settings
    sheet = tmp_path / "sheet.csv"
    assert run_cli(s, "accounts", "class", "add", "lab2", "-n", "2", "--out", str(sheet)).returncode == 0
    users = [row["username"] for row in csv.DictReader(sheet.open())]
    assert run_cli(s, "accounts", "class", "purge", "--yes").stdout.strip() == "no class has ended"
    r = run_cli(s, "accounts", "class", "remove", "lab2", "--yes")
    assert r.returncode == 0 and "2 accounts" in r.stdout
    assert _left_behind(s, users) == {"accounts": 0, "roles": 0, "schemas": 0, "folders": 0}
