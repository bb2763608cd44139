"""`dl.authClient` for Starbox: log in and out, and ask the Auth Manager yes/no questions.

Same functions, arguments and results as astro-datalab 2.24.0. `login` never raises: it returns
the token, or an error string (normally the service's own message, e.g. 'Error: Invalid
password'). The is* checks return bools.

Deliberate differences from dl:

* Only 'anonymous' is a built-in login; dl's demo accounts (dldemo, dltest) do not exist here.
* The login is kept in memory, in ~/.datalab/id_token.<user> (as dl) and in a small state file
  (~/.datalab/starbox_login.json) that replaces dl.conf's [login] section.
* isAlive() without an argument checks the URL in use, not a URL fixed at import time.
"""

from __future__ import annotations

from starbox.client import http as _http

ANON_TOKEN = _http.ANON_TOKEN
_profile = "default"


class dlAuthError(Exception):
    """dl's error class (login and logout turn it into a returned string).

    Parameters
    ----------
    message : str
        The message, also kept as ``message``.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


def _get(path: str, params: dict, tok: str | None = None, **headers):
    return _http.request("GET", f"{get_svc_url()}{path}", tok=tok, params=params, extra_headers=headers, timeout=30)


def _ask(path: str, **params) -> bool:
    """A True/False question; an unreachable service answers False."""
    params.setdefault("profile", _profile)
    try:
        return _http.as_bool(_get(path, params, tok=_http.token(None)))
    except _http.Unreachable:
        return False


# --- sessions ------------------------------------------------------------------------------------


def login(user, password=None, debug=False, verbose=False):
    """Log in and return the token (kept for later calls), or an error string.

    Parameters
    ----------
    user : str
        The account name; ``'anonymous'`` returns the anonymous token without asking the service.
    password : str, optional
        The password. Without one, a token saved earlier in ``~/.datalab/id_token.<user>`` is
        used if it is still valid.
    debug : bool, optional
        Passed to the service, as dl does.
    verbose : bool, optional
        Print a line on success.

    Returns
    -------
    str
        The token, or the service's message (e.g. ``'Error: Invalid password'``); never raises.
    """
    if user == "anonymous":
        return ANON_TOKEN
    if password is None:
        saved = _http.read_token_file(user)
        if saved and saved.startswith(f"{user}.") and isValidToken(saved):
            _http.remember(user, saved)
            return saved
        return "No password or token supplied"
    try:
        r = _get(
            "/login", {"username": user, "profile": _profile, "debug": str(bool(debug))}, **{"X-DL-Password": password}
        )
    except _http.Unreachable:
        return "AuthManager Service not responding."
    if r.status_code != 200:
        return r.text
    token = r.text.strip()
    _http.remember(user, token)
    if verbose:
        print(f"Logged in as {user}")
    return token


def logout(token=None):
    """Log out this process's login, or the session of the given token.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login.

    Returns
    -------
    str
        ``'OK'`` or an error string.
    """
    tok = _http.token(token)
    if not _http.is_token(tok) or tok == ANON_TOKEN:
        return "Error: Invalid user token"
    try:
        r = _get("/logout", {"token": tok, "debug": "False"}, tok=tok)
    except _http.Unreachable as exc:
        return exc.message
    if r.status_code == 200:
        _http.forget(tok)
    return r.text


def passwordReset(token, username, password):
    """Set a new password for `username` (your own account).

    Parameters
    ----------
    token : str
        The token of the caller's session (None: this process's login).
    username : str
        The account whose password changes.
    password : str
        The new password.

    Returns
    -------
    str
        The new token (the old session ends), or an error string.
    """
    tok = _http.token(token)
    try:
        r = _get(
            "/passwordReset",
            {"token": tok, "username": username, "debug": "False"},
            tok=tok,
            **{"X-DL-Password": password},
        )
    except _http.Unreachable as exc:
        return exc.message
    if r.status_code != 200:
        return r.text
    new = r.text.strip()
    if _http.is_token(new):
        _http.forget(tok)
        _http.remember(username, new)
    return new


def whoAmI():
    """The user of the token calls send now.

    Returns
    -------
    str
        The user name, ``'anonymous'`` if there is no login.
    """
    return _http.token_user(_http.token(None))


# --- questions -----------------------------------------------------------------------------------


def isAlive(svc_url=None):
    """Does the Auth Manager answer?

    Parameters
    ----------
    svc_url : str, optional
        The URL to check; by default the one in use.

    Returns
    -------
    bool
    """
    return _http.is_alive((svc_url or get_svc_url()).strip().rstrip("/"), timeout=2)


def isValidToken(token):
    """Is `token` a valid, open session?

    Parameters
    ----------
    token : str
        The token to check.

    Returns
    -------
    bool
    """
    if not _http.is_token(token):
        return False
    if token.strip() == ANON_TOKEN:
        return True
    return _ask("/isValidToken", token=token.strip())


def isValidUser(user):
    """Does the account `user` exist?

    Parameters
    ----------
    user : str
        The account name (``'anonymous'`` always exists).

    Returns
    -------
    bool
    """
    return True if user == "anonymous" else _ask("/isValidUser", user=user)


def isValidPassword(user, password):
    """Is `password` the password of `user`? Counts as a login attempt for the lockout.

    Parameters
    ----------
    user : str
        The account name.
    password : str
        The password to check.

    Returns
    -------
    bool
    """
    return _ask("/isValidPassword", user=user, password=password)


def hasAccess(user, resource):
    """May `user` reach `resource`?

    Parameters
    ----------
    user : str
        The account name.
    resource : str
        A resource name, e.g. a storage path.

    Returns
    -------
    bool
    """
    return _ask("/hasAccess", user=user, resource=resource)


def isUserLoggedIn(user):
    """Has `user` an open session?

    Parameters
    ----------
    user : str
        The account name.

    Returns
    -------
    bool
    """
    return _ask("/isUserLoggedIn", user=user)


def isTokenLoggedIn(token):
    """Is the session of `token` still open?

    Parameters
    ----------
    token : str
        The token to check.

    Returns
    -------
    bool
    """
    return _ask("/isTokenLoggedIn", token=token)


# --- service settings ------------------------------------------------------------------------------


def set_svc_url(svc_url):
    """Point the Auth Manager calls at another URL.

    Parameters
    ----------
    svc_url : str
        The base URL, e.g. ``http://127.0.0.1:8400/auth``; empty leaves it unchanged.
    """
    if svc_url:
        _http.set_url("auth", svc_url)


def get_svc_url():
    """The Auth Manager URL in use.

    Returns
    -------
    str
    """
    return _http.url("auth")


def set_profile(profile):
    """Set the service profile sent with later calls.

    Parameters
    ----------
    profile : str
        The profile name.
    """
    global _profile
    _profile = profile


def get_profile():
    """The service profile in use.

    Returns
    -------
    str
    """
    return _profile


def list_profiles(token=None, profile=None, format="text"):
    """As in dl: the Auth Manager has no profiles.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login.
    profile : str, optional
        Ignored.
    format : str, optional
        Ignored.

    Returns
    -------
    str
        ``'None'``.
    """
    return "None"
