"""Secrets the appliance makes once and keeps under $STARBOX_HOME/secrets (mode 0600)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from starbox.settings import Settings


def _secret(settings: Settings, name: str) -> str:
    path: Path = settings.secrets_dir / name
    if not path.exists():
        settings.secrets_dir.mkdir(parents=True, exist_ok=True)
        settings.secrets_dir.chmod(0o700)
        tmp = path.with_suffix(".part")
        tmp.write_text(secrets.token_urlsafe(32) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return path.read_text().strip()


def service_password(settings: Settings) -> str:
    """Password of starbox_service, the login that reads and writes service state."""
    return _secret(settings, "service.password")


def signing_key(settings: Settings) -> bytes:
    """Key for HMAC-signed download and upload URLs."""
    return _secret(settings, "signing.key").encode()


def role_password(settings: Settings, role: str) -> str:
    """Password of a user's (or the anonymous) database login, derived so nothing else is stored."""
    return hmac.new(_secret(settings, "roles.key").encode(), role.encode(), hashlib.sha256).hexdigest()
