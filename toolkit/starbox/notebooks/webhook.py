"""The GitHub push webhook's checks: the shared secret and signature, which repository a push
is from, and deliveries already handled (GitHub retries; an attacker may replay)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import sqlite3
import time
from urllib.parse import urlsplit

from starbox import keys
from starbox.settings import Settings

from .sources import is_url, source
from .state import state_dir


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(settings: Settings, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256 check, constant-time."""
    secret = keys.webhook_secret(settings, create=False)  # a request from outside makes none
    if not header or secret is None:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode())


def repo_key(url: str) -> tuple[str, str] | None:
    """(host, owner/name) of a hosting URL, lower case, .git dropped; None if it has no such shape."""
    url = url.strip()
    m = re.match(r"^[\w.-]+@([\w.-]+):(.+)$", url)  # scp-like git@github.com:owner/name.git
    if m:
        host, path = m.group(1), m.group(2)
    else:
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    path = path.strip("/").removesuffix(".git").lower()
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2:
        return None
    return host.lower(), "/".join(segments[-2:])


def repository_matches(settings: Settings, repository: dict) -> tuple[bool, str]:
    """Whether a push event's repository is the configured one; and what was expected.

    With a URL setting the payload must name the same owner/name (full_name, or any of its clone,
    ssh, git or html URLs). A local path has no GitHub identity to compare, so any repository is
    accepted: the shared secret already proves the sender, and the branch must still match.
    """
    repo = source(settings)
    if not is_url(repo):
        return True, "any repository (lessons_repo is a local path)"
    key = repo_key(repo)
    if key is None:
        return True, "any repository (lessons_repo has no owner/name)"
    host, name = key
    if not isinstance(repository, dict):
        return False, name
    if str(repository.get("full_name", "")).lower() == name:
        return True, name
    for field_name in ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url"):
        value = repository.get(field_name)
        if isinstance(value, str) and repo_key(value) == key:
            return True, name
    return False, name


def remember_delivery(settings: Settings, delivery: str, digest: str) -> bool:
    """Record a verified delivery; False when its id (or the same signed body) was seen before."""
    path = state_dir(settings) / "deliveries.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, digest TEXT UNIQUE, received REAL NOT NULL)"
        )
        try:
            db.execute("INSERT INTO deliveries VALUES (?, ?, ?)", (delivery, digest, time.time()))
        except sqlite3.IntegrityError:
            return False
        db.execute(
            "DELETE FROM deliveries WHERE id NOT IN (SELECT id FROM deliveries ORDER BY received DESC LIMIT 10000)"
        )
    return True
