"""The hub's login is the Starbox login: a JupyterHub Authenticator over Starbox's accounts.

The same checks and plain words as the API's login (accounts.check_login): "Account is
disabled", "Account expired on ...". Password guessing is limited as on the API (the service's
LoginLimiter, keyed by the browser's address as the proxy reports it). Class accounts join a hub
group named after their class. Nothing is cached: an account disabled or ended is refused at its
next login and at the hub's next check of it (`refresh_user`), and the expiry service stops its
server within a minute (hub/expiry.py).
"""

from __future__ import annotations

import asyncio

from jupyterhub.auth import Authenticator
from tornado import web

from starbox import accounts, database
from starbox import settings as settings_mod
from starbox.errors import StarboxError
from starbox.service.login_limit import LoginLimiter


class StarboxAuthenticator(Authenticator):
    """Starbox accounts log in; everyone with an active account is allowed."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._settings = settings_mod.get()
        self._limiter = LoginLimiter(self._settings)

    def _check(self, username: str, password: str, address: str) -> dict:
        with self._limiter.attempt(username, address) as attempt:
            try:
                with database.connect_admin(self._settings) as conn:
                    accounts.check_login(conn, username, password)
                    standing = accounts.standing(conn, username)
            except StarboxError:
                attempt.failed = True
                raise
        groups = [standing.class_name] if standing and standing.class_name else []
        return {"name": username, "groups": groups}

    async def authenticate(self, handler, data):
        username = (data or {}).get("username", "").strip().lower()
        password = (data or {}).get("password", "")
        try:
            accounts.check_username(username)
        except StarboxError:
            raise web.HTTPError(403, "Invalid user") from None
        address = handler.request.remote_ip if handler is not None else "local"
        try:
            return await asyncio.to_thread(self._check, username, password, address)
        except StarboxError as exc:
            # JupyterHub shows this message on the login page itself
            raise web.HTTPError(429 if exc.status == 429 else 403, str(exc)) from None

    def _active(self, username: str) -> bool:
        with database.connect_admin(self._settings) as conn:
            standing = accounts.standing(conn, username)
        return bool(standing and standing.active)

    async def check_allowed(self, username, authentication=None):
        return await asyncio.to_thread(self._active, username)

    async def refresh_user(self, user, handler=None, **kwargs):
        """False (log in again) once the account is disabled, ended or gone."""
        return await asyncio.to_thread(self._active, user.name)
