"""/auth against the live service: login, tokens, the is* checks, logout, passwordReset."""

from __future__ import annotations

import re

import pytest

from starbox import accounts

pytestmark = pytest.mark.api

TOKEN = re.compile(r"([^\/\s]+)\.(\d+)\.(\d+)\.((?:\$1\$\S{22,})|(?:\S+_access))")


def test_roots_say_hello(api):
    with api.client() as c:
        for prefix in ("/auth", "/query", "/storage", "/res"):
            r = c.get(prefix)
            if r.status_code == 404:
                continue  # routers land one by one; test_datalab_client covers all four
            assert r.status_code == 200 and r.text.lower().startswith("hello world"), prefix


def test_login_gives_a_datalab_token_and_stores_only_its_hash(api, admin):
    token = api.add_user("authuser", "pw-123456")
    assert TOKEN.fullmatch(token) and len(token) < 128
    name, uid, gid, secret = TOKEN.fullmatch(token).groups()
    assert name == "authuser" and uid == gid
    stored = [r[0] for r in admin.execute("SELECT secret_sha256 FROM starbox.tokens WHERE username='authuser'")]
    assert secret[3:] not in stored and all(len(h) == 64 for h in stored)
    pw = admin.execute("SELECT password_hash FROM starbox.accounts WHERE username='authuser'").fetchone()[0]
    assert pw.startswith("$argon2")


def test_login_failures(api):
    api.add_user("authuser2", "pw-123456")
    with api.client() as c:
        r = c.get("/auth/login", params={"username": "authuser2"}, headers={"X-DL-Password": "wrong"})
        assert r.status_code == 401 and r.text == "Error: Invalid password"
        r = c.get("/auth/login", params={"username": "nobody_here"}, headers={"X-DL-Password": "x"})
        assert r.status_code == 401 and r.text == "Error: Invalid user"
        r = c.get("/auth/login", params={"username": "authuser2"})
        assert r.status_code == 401 and "No password" in r.text
        r = c.get("/auth/login")
        assert r.status_code == 400


def test_is_checks_and_logout(api):
    token = api.add_user("authuser3", "pw-123456")
    with api.client() as c:
        assert c.get("/auth/isValidToken", params={"token": token}).text == "True"
        assert c.get("/auth/isValidToken", params={"token": token[:-2] + "xx"}).text == "False"
        assert c.get("/auth/isValidToken", params={"token": "garbage"}).text == "False"
        assert c.get("/auth/isValidToken", params={"token": accounts.ANON_TOKEN}).text == "True"
        assert c.get("/auth/isValidUser", params={"user": "authuser3"}).text == "True"
        assert c.get("/auth/isValidUser", params={"user": "ghost"}).text == "False"
        assert c.get("/auth/isValidPassword", params={"user": "authuser3", "password": "pw-123456"}).text == "True"
        assert c.get("/auth/isValidPassword", params={"user": "authuser3", "password": "no"}).text == "False"
        assert c.get("/auth/isUserLoggedIn", params={"user": "authuser3"}).text == "True"
        assert c.get("/auth/isTokenLoggedIn", params={"token": token}).text == "True"
        assert c.get("/auth/hasAccess", params={"user": "authuser3", "resource": "vos://x.csv"}).text == "True"
        assert c.get("/auth/hasAccess", params={"user": "authuser3", "resource": "other://x.csv"}).text == "False"
        assert c.get("/auth/hasAccess", params={"user": "authuser3", "resource": "other://public/x"}).text == "True"
        # the client really sends the parameters twice
        r = c.get(f"/auth/logout?token={token}&debug=False&token={token}&debug=False", headers={"X-DL-AuthToken": token})
        assert (r.status_code, r.text) == (200, "OK")
        assert c.get("/auth/isValidToken", params={"token": token}).text == "False"
        r = c.get("/auth/logout", params={"token": token}, headers={"X-DL-AuthToken": token})
        assert r.status_code == 401 and "Invalid user token" in r.text


def test_password_reset_only_for_oneself(api):
    token = api.add_user("authuser4", "pw-123456")
    other = api.add_user("authuser5", "pw-123456")
    with api.client() as c:
        r = c.get("/auth/passwordReset", params={"username": "authuser5"},
                  headers={"X-DL-AuthToken": token, "X-DL-Password": "new-password"})
        assert r.status_code == 400 and "own password" in r.text
        r = c.get("/auth/passwordReset", params={"username": "authuser4"},
                  headers={"X-DL-AuthToken": token, "X-DL-Password": "new-password"})
        assert r.status_code == 200 and TOKEN.fullmatch(r.text)
        assert c.get("/auth/isValidToken", params={"token": token}).text == "False"  # old sessions end
        assert c.get("/auth/isValidToken", params={"token": r.text}).text == "True"
        assert c.get("/auth/isValidPassword", params={"user": "authuser4", "password": "new-password"}).text == "True"
        assert c.get("/auth/isValidToken", params={"token": other}).text == "True"


def test_malformed_tokens_get_401_not_500(api):
    with api.client() as c:
        for bad in ("x", "a.b.c.d", "user.1.1.$1$short", "' OR 1=1 --", "ü" * 300):
            r = c.get("/auth/passwordReset", params={"username": "x"}, headers={"X-DL-AuthToken": bad.encode()})
            assert r.status_code == 401, (bad, r.status_code, r.text)


def test_disabled_account_cannot_log_in(api, admin):
    token = api.add_user("authuser6", "pw-123456")
    accounts.set_disabled(admin, "authuser6", True)
    with api.client() as c:
        assert c.get("/auth/isValidToken", params={"token": token}).text == "False"
        r = c.get("/auth/login", params={"username": "authuser6"}, headers={"X-DL-Password": "pw-123456"})
        assert r.status_code == 401 and "disabled" in r.text
    accounts.set_disabled(admin, "authuser6", False)
