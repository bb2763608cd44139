"""`dl.resClient` for Starbox: the user-record and password calls that make sense on one box.

Same functions and arguments as astro-datalab 2.24.0's getUser, setUser, listFields,
passwordReset and createUser. Deliberate differences from dl:

* A user reads and changes their own record only (fields: listFields()); dl's setUser never
  sends its value (it fails with a TypeError), this one does.
* createUser always answers with the service's refusal: Starbox's admin makes accounts, since
  making one needs rights the service never holds.
* Groups, resources and jobs records are not kept (findJobs is queryClient's, as in dl).
* Errors raise dlResError with the service's message, as dl's get/set do.
"""

from __future__ import annotations

from starbox.client import http as _http


class dlResError(Exception):
    """dl's error class for the Resource Manager.

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


def _call(path: str, tok: str | None, **params) -> str:
    try:
        r = _http.request("GET", f"{get_svc_url()}{path}", tok=tok, params=params, timeout=30)
    except _http.Unreachable as exc:
        raise dlResError(exc.message) from None
    if r.status_code != 200:
        raise dlResError(r.text.strip())
    return r.text


def getUser(token, username, keyword, profile="default"):
    """One field of your user record.

    Parameters
    ----------
    token : str
        Your token (None: this process's login).
    username : str
        Your user name.
    keyword : str
        The field (see listFields): 'email', 'name', 'institute', 'created', 'username'.

    Returns
    -------
    str
        Its value ('' when unset).
    """
    return _call("/get", _http.token(token), what="user", username=username, keyword=keyword, profile=profile)


def setUser(token, username, keyword, value, profile="default"):
    """Change a field of your user record ('email', 'name' or 'institute'; '' clears it).

    Returns
    -------
    str
        'OK'.
    """
    return _call(
        "/set", _http.token(token), what="user", username=username, keyword=keyword, value=value, profile=profile
    )


def listFields(profile="default"):
    """The fields of a user record, comma-separated.

    Returns
    -------
    str
    """
    return _call("/listFields", _http.token(None), profile=profile)


def passwordReset(token, user, password, profile="default"):
    """Change your own password; every session of yours ends, and the saved login is removed
    (as dl does): log in again with the new password.

    Returns
    -------
    None
    """
    tok = _http.token(token)
    _call("/pwReset", tok, user=user, password=password, profile=profile)
    _http.forget(tok)
    print("passwordReset:  success, removing local token file")


def createUser(username, password, email, name, institute, profile="default"):
    """Ask for a new account; on Starbox the service's answer is its refusal (its admin makes
    accounts). Returns the answer as text, as dl does.

    Returns
    -------
    str
    """
    try:
        return _call(
            "/create",
            None,
            what="user",
            username=username,
            email=email,
            name=name,
            institute=institute,
            profile=profile,
        )
    except dlResError as exc:
        return exc.message


def set_svc_url(svc_url):
    """Point the Resource Manager calls at another URL (empty leaves it unchanged).

    Parameters
    ----------
    svc_url : str
        The base URL, e.g. ``http://127.0.0.1:8400/res``.
    """
    if svc_url:
        _http.set_url("res", svc_url)


def get_svc_url():
    """The Resource Manager URL in use.

    Returns
    -------
    str
    """
    return _http.url("res")
