"""FastAPI dependencies: the app's state, and the user a request's token stands for."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request

from starbox import accounts
from starbox.accounts import User
from starbox.errors import Unauthorized
from starbox.settings import Settings


def proxy_socket(settings: Settings) -> Path:
    """Where the hub's proxy reaches the service in shared mode (in the hub's root-only folder)."""
    from starbox.jupyter.hub.paths import hub_dir

    return hub_dir(settings) / "service.sock"


def client_address(request: Request) -> str:
    """The caller's address: the TCP peer; on the proxy's unix socket (no peer address: only the
    hub's proxy, as root, can connect there), the last X-Forwarded-For entry, which the proxy
    appends itself whatever the browser sent."""
    if request.client is not None:
        return request.client.host
    forwarded = request.headers.get("x-forwarded-for", "")
    return forwarded.rsplit(",", 1)[-1].strip() or "proxy"


def token_of(request: Request) -> str | None:
    """X-DL-AuthToken (Data Lab), or `Authorization: Bearer` (TAP clients)."""
    token = request.headers.get("x-dl-authtoken")
    if not token:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
    return token or None


def current_user(request: Request) -> User:
    """The request's user: anonymous without a token, 401 for a token that is not valid."""
    token = token_of(request)
    if token is None or token == accounts.ANON_TOKEN:
        return accounts.ANONYMOUS
    with request.app.state.pools.state_conn() as conn:
        user = accounts.resolve(conn, token)
    if user is None:
        raise Unauthorized("Error: Invalid user token")
    return user


def logged_in_user(request: Request) -> User:
    """Like current_user, but anonymous users are refused (401)."""
    user = current_user(request)
    if user.anonymous:
        raise Unauthorized("Error: this needs a logged-in user; anonymous access is read-only")
    return user
