"""Signed download and upload URLs: Data Lab's client fetches them without any headers.

A URL carries a small payload (user, owner, path, method, expiry) and an HMAC-SHA256 of it made
with ``keys.signing_key``. It is checked again when used: the signature, the expiry, the method,
and then the user's permissions on the path as they are *now*.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from dataclasses import dataclass

from starbox import keys
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

    def uri(self) -> str:
        return ("vos://" if self.user == self.owner else f"{self.owner}://") + self.rel


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(settings: Settings, payload: str) -> str:
    return _b64(hmac.new(keys.signing_key(settings), payload.encode(), hashlib.sha256).digest())


def sign(settings: Settings, user: User, node: Node, method: str, *, expires: float | None = None) -> str:
    """A URL on settings.service_url that lets `user` GET or PUT `node` until `expires` (epoch s)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}")
    exp = int(time.time() + settings.signed_url_ttl if expires is None else expires)
    body = json.dumps({"u": user.name, "o": node.owner, "p": node.rel, "m": method, "e": exp},
                      separators=(",", ":"), sort_keys=True)
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
        grant = Grant(str(data["u"]), str(data["o"]), str(data["p"]), str(data["m"]), int(data["e"]))
    except (ValueError, KeyError, TypeError):
        raise Forbidden("Error: this storage link is not valid") from None
    if grant.method != method:
        raise Forbidden(f"Error: this storage link is for {grant.method.upper()}, not {method.upper()}")
    if grant.expires < time.time():
        raise Forbidden("Error: this storage link has expired; ask for a new one")
    return grant
