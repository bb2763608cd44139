"""FastAPI dependencies: the app's state, and the user a request's token stands for."""

from __future__ import annotations

from fastapi import Request

from starbox import accounts
from starbox.accounts import User
from starbox.errors import Unauthorized


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
