"""/auth: Data Lab's Auth Manager. Booleans are the bodies `True` / `False`."""

from __future__ import annotations

from fastapi import APIRouter, Header, Request
from fastapi.responses import PlainTextResponse

from starbox import accounts
from starbox.errors import StarboxError, Unauthorized
from starbox.service import flags, login_limit
from starbox.service.app import HELLO
from starbox.service.deps import client_address, current_user, token_of

router = APIRouter(default_response_class=PlainTextResponse)


def _state(request: Request):
    return request.app.state.pools.state_conn()


def _attempt(request: Request, username: str):
    """A password check, refused early for a locked-out account/address (see login_limit)."""
    return login_limit.of(request.app).attempt(username, client_address(request))


@router.get("/")
@router.get("")
def hello() -> str:
    """Says the service is up (Data Lab's `isAlive`)."""
    return HELLO


@router.get("/login")
def login(request: Request, username: str = "", x_dl_password: str = Header("", alias="X-DL-Password")) -> str:
    """Log in: the username, the password in X-DL-Password; answers a token."""
    if not username:
        raise StarboxError("Error: no username given")
    with _attempt(request, username), _state(request) as conn:
        try:
            return accounts.login(conn, username, x_dl_password)
        except StarboxError as exc:
            raise Unauthorized(f"Error: {exc}") from None


@router.get("/logout")
def logout(request: Request, token: str = "") -> str:
    """End the session the token names."""
    token = token_of(request) or token
    with _state(request) as conn:
        if accounts.resolve(conn, token) is None:
            raise Unauthorized("Error: Invalid user token")
        if token == accounts.ANON_TOKEN:
            return "OK"
        if not accounts.logout(conn, token):
            raise Unauthorized("Error: User token is not logged in")
    return "OK"


@router.get("/isValidToken")
def is_valid_token(request: Request, token: str = "") -> str:
    """True if the token names an open session (or is the anonymous token)."""
    with _state(request) as conn:
        return flags.answer(accounts.resolve(conn, token or token_of(request)) is not None)


@router.get("/isValidUser")
def is_valid_user(request: Request, user: str = "") -> str:
    """True if an account of that name exists."""
    if user == "anonymous":
        return "True"
    with _state(request) as conn:
        return flags.answer(accounts.user_exists(conn, user))


@router.get("/isValidPassword")
def is_valid_password(request: Request, user: str = "", password: str = "") -> str:
    """True if the password is the user's (counted against the login rate limit)."""
    with _attempt(request, user) as attempt, _state(request) as conn:
        attempt.failed = accounts.verify_password(conn, user, password) is None
        return flags.answer(not attempt.failed)


@router.get("/isUserLoggedIn")
def is_user_logged_in(request: Request, user: str = "") -> str:
    """True if the user has an open session."""
    with _state(request) as conn:
        return flags.answer(accounts.user_logged_in(conn, user))


@router.get("/isTokenLoggedIn")
def is_token_logged_in(request: Request, token: str = "") -> str:
    """True if the token's session is open and belongs to a logged-in user."""
    with _state(request) as conn:
        user = accounts.resolve(conn, token or token_of(request))
    return flags.answer(user is not None and not user.anonymous)


@router.get("/hasAccess")
def has_access(request: Request, user: str = "", resource: str = "") -> str:
    """A user may reach their own storage and MyDB, everyone's public/ folders and the catalogs."""
    with _state(request) as conn:
        if user != "anonymous" and not accounts.user_exists(conn, user):
            return "False"
    scheme, sep, path = resource.partition("://")
    if not sep:
        return "True"  # a catalog or service name: public
    if scheme in ("vos", "mydb"):
        return flags.answer(user != "anonymous")
    return flags.answer(scheme == user or path.lstrip("/").startswith("public"))


@router.get("/passwordReset")
def password_reset(
    request: Request, username: str = "", token: str = "", x_dl_password: str = Header("", alias="X-DL-Password")
) -> str:
    """Change a password: a user changes their own (with their token); the session ends."""
    user = current_user(request)
    with _state(request) as conn:
        new = accounts.change_own_password(conn, user, username, x_dl_password)
    request.app.state.pools.forget(user)
    return new
