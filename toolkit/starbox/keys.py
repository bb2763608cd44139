"""Secrets the appliance makes once and keeps under $STARBOX_HOME/secrets (mode 0600).

Every secret file is named here and nowhere else: a module that needs one asks for it by name.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from starbox.settings import Settings

SERVICE_PASSWORD = "service.password"  # starbox_service's login
SIGNING_KEY = "signing.key"  # HMAC key of storage links
ROLES_KEY = "roles.key"  # derives each database role's password; marks a home as used
POSTGRES_PASSWORD = "postgres.password"  # the embedded cluster's superuser (written at initdb)
WEBHOOK_SECRET = "webhook.secret"  # what GitHub signs push events with
HUB_PROXY_TOKEN = "hub-proxy.token"  # the hub's key to its proxy's API
HUB_ADMIN_TOKEN = "hub-admin.token"  # the `starbox hub` commands' key to the hub's API


def path(settings: Settings, name: str) -> Path:
    return settings.secrets_dir / name


def ensure_dir(settings: Settings) -> Path:
    """The secrets folder, made private (0700) if it is new."""
    settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    settings.secrets_dir.chmod(0o700)
    return settings.secrets_dir


def _secret(settings: Settings, name: str) -> str:
    file = path(settings, name)
    if not file.exists():
        ensure_dir(settings)
        tmp = file.with_suffix(".part")
        tmp.write_text(secrets.token_urlsafe(32) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, file)
    return file.read_text().strip()


def home_in_use(settings: Settings) -> bool:
    """This home's keys exist: it belongs to a Starbox already (restore and standby need an empty one)."""
    return path(settings, ROLES_KEY).exists()


def service_password(settings: Settings) -> str:
    """Password of starbox_service, the login that reads and writes service state."""
    return _secret(settings, SERVICE_PASSWORD)


def signing_key(settings: Settings) -> bytes:
    """Key for HMAC-signed download and upload URLs."""
    return _secret(settings, SIGNING_KEY).encode()


def role_password(settings: Settings, role: str) -> str:
    """Password of a user's (or the anonymous) database login, derived so nothing else is stored."""
    return hmac.new(_secret(settings, ROLES_KEY).encode(), role.encode(), hashlib.sha256).hexdigest()


def webhook_secret(settings: Settings, create: bool = True) -> str | None:
    """The shared secret GitHub signs push events with (made once, by the admin's `starbox
    notebooks webhook`); with create=False, None until then."""
    if not create and not path(settings, WEBHOOK_SECRET).is_file():
        return None
    return _secret(settings, WEBHOOK_SECRET)


def hub_proxy_token(settings: Settings) -> str:
    return _secret(settings, HUB_PROXY_TOKEN)


def hub_admin_token(settings: Settings) -> str:
    """The hub service `starbox-admin`'s API token (a least-privilege role: hub/config.py)."""
    return _secret(settings, HUB_ADMIN_TOKEN)


def local_token_file(settings: Settings) -> Path:
    """The local user's saved login token (personal mode's JupyterLab logs in with it)."""
    return path(settings, f"{settings.local_user}.token")


def local_password_file(settings: Settings) -> Path:
    return path(settings, f"{settings.local_user}.password")
