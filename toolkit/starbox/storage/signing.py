"""Signed download and upload URLs: Data Lab's client fetches them without any headers.

A URL carries a small payload (user, uid, the session that asked for it, owner, path, method,
expiry) and an HMAC-SHA256 of it made with ``keys.signing_key``. It is checked again when used:
the signature, the expiry, the method, then (``check_live``) that the account still exists with
that uid, is active, and that the session is still open (logout, ``accounts disable``,
``accounts passwd`` and a password reset revoke sessions, so their URLs die with them), and then
the user's permissions on the path as they are *now*.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass

import psycopg

from starbox import accounts, keys
from starbox.accounts import User
from starbox.errors import Forbidden
from starbox.settings import Settings
from starbox.storage.paths import Node

PREFIX = "/storage/file"
METHODS = ("get", "put")


@dataclass(frozen=True)
class Grant:
    user: str
    owner: str
    rel: str
    method: str
    expires: int
    uid: int | None = None
    session: str | None = None  # a prefix of the session token's stored hash

    def uri(self) -> str:
        return ("vos://" if self.user == self.owner else f"{self.owner}://") + self.rel


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, payload: str) -> str:
    return _b64(hmac.new(keys.signing_key(settings), payload.encode(), hashlib.sha256).digest())


SESSION_CHARS = 16  # of the token's SHA-256 (hex): enough to name a session, not the whole hash


def session_of(token: str | None) -> str | None:
    """What a URL carries to name the session (the request's token) that asked for it."""
    parsed = accounts.parse_token(token)
    if parsed is None or not parsed[2].startswith("$1$"):
        return None
    return hashlib.sha256(parsed[2][3:].encode()).hexdigest()[:SESSION_CHARS]


def sign(
    settings: Settings, user: User, node: Node, method: str, *, expires: float | None = None, session: str | None = None
) -> str:
    """A URL on settings.service_url that lets `user` GET or PUT `node` until `expires` (epoch s),
    while the session `session` (see session_of) stays open."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    exp = int(time.time() + settings.signed_url_ttl if expires is None else expires)
    fields = {"u": user.name, "o": node.owner, "p": node.rel, "m": method, "e": exp}
    if not user.anonymous:
        fields |= {"i": user.uid, "s": session or ""}
    body = json.dumps(fields, separators=(",", ":"), sort_keys=True)
    payload = _b64(body.encode())
    token = f"{payload}.{_mac(settings, payload)}"
    name = urllib.parse.quote(node.parts[-1] if node.parts else "file", safe="")
    return f"{settings.service_url}{PREFIX}/{token}/{name}"


def verify(settings: Settings, token: str, method: str) -> Grant:
    """The grant a URL token carries, or Forbidden (403) if tampered with, expired or misused."""
    payload, _, mac = (token or "").partition(".")
    if not payload or not mac or not hmac.compare_digest(mac.encode(), _mac(settings, payload).encode()):
        raise Forbidden("Error: this storage link is not valid (bad signature)")
    try:
        data = json.loads(_unb64(payload))
        grant = Grant(
            str(data["u"]),
            str(data["o"]),
            str(data["p"]),
            str(data["m"]),
            int(data["e"]),
            int(data["i"]) if "i" in data else None,
            str(data["s"]) if data.get("s") else None,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise Forbidden("Error: this storage link is not valid") from None
    if grant.method != method:
        raise Forbidden(f"Error: this storage link is for {grant.method.upper()}, not {method.upper()}")
    if grant.expires < time.time():
        raise Forbidden("Error: this storage link has expired; ask for a new one")
    return grant


def check_live(conn: psycopg.Connection, grant: Grant) -> None:
    """Forbidden (403) unless the account that asked for the URL still exists with the same uid
    (a re-created account of the same name is someone else), is active, and the session that
    asked is still open. Anonymous URLs (public files only) have no account to check."""
    if grant.user == accounts.ANONYMOUS.name:
        return
    row = accounts.session_state(conn, grant.user, grant.session or "")
    if row is None or grant.uid is None or row[0] != grant.uid:
        raise Forbidden("Error: this storage link was revoked: its account no longer exists")
    uid, disabled, ended, session_open = row
    if disabled:
        raise Forbidden("Error: this storage link was revoked: its account is disabled")
    if ended:
        raise Forbidden("Error: this storage link was revoked: its account has expired")
    if not grant.session or not session_open:
        raise Forbidden(
            "Error: this storage link was revoked: the session that asked for it has ended "
            "(logout or a password change); log in and ask for a new one"
        )
