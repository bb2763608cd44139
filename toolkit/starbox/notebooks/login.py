"""Which Starbox account `starbox nbtest` runs notebooks as.

A shell's toolkit is anonymous while JupyterLab's kernels are logged in as the appliance's
lesson account, so lessons that use MyDB or storage would fail in the shell and pass in the lab.
When whoever runs nbtest can administer the appliance (its owner), the kernels get that lesson
account's login by default, or a fresh token of the account `--user` names (revoked after the
run); `--user anonymous` runs them anonymously. Either way the kernels get a private HOME, so
a login saved in ~/.datalab cannot put them under another account.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

ANONYMOUS = "anonymous"


@contextlib.contextmanager
def kernels_logged_in(settings: Settings, user: str | None) -> Iterator[str]:
    """Set the environment the kernels inherit for the run; yields a line saying who they are.
    Raises StarboxError for an account that does not exist or cannot be logged in to."""
    token, issued, said = _token(settings, user)
    if token is None and user is None:  # not the owner: the shell's own login, as before
        yield said
        return
    saved = {k: os.environ.get(k) for k in ("STARBOX_TOKEN", "STARBOX_URL", "HOME", "MPLCONFIGDIR")}
    fonts = Path.home() / ".cache" / "matplotlib"  # matplotlib's font cache: not rebuilt per kernel
    with tempfile.TemporaryDirectory(prefix="starbox-nbtest-home-") as home:
        os.environ.update(HOME=home, STARBOX_URL=settings.service_url)
        if saved["MPLCONFIGDIR"] is None and fonts.is_dir():
            os.environ["MPLCONFIGDIR"] = str(fonts)
        if token:
            os.environ["STARBOX_TOKEN"] = token
        else:
            os.environ.pop("STARBOX_TOKEN", None)
        try:
            yield said
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            if issued and token:
                _revoke(settings, token)


def _token(settings: Settings, user: str | None) -> tuple[str | None, bool, str]:
    """(token or None for anonymous, whether it was issued for this run, who the kernels are)."""
    if user == ANONYMOUS:
        return None, False, "notebooks run anonymously"
    from starbox import accounts, database

    try:
        if user is None or user == settings.local_user:
            from starbox.jupyter.account import ensure_local_user

            return ensure_local_user(settings), False, f"notebooks run as the lesson account {settings.local_user}"
        with database.connect_admin(settings) as conn:
            uid = accounts.uid_of(conn, user)
            token = None if uid is None else accounts.issue_token(conn, accounts.User(user, uid))
    except Exception as exc:  # no database here, or no right to administer it
        if user is not None:
            raise StarboxError(f"cannot log in as {user!r}: only the appliance's owner can ({_first(exc)})") from None
        return None, False, f"notebooks run with this shell's own login (no appliance to log in to: {_first(exc)})"
    if token is None:
        raise StarboxError(f"no account named {user!r} (see `starbox accounts list`)")
    return token, True, f"notebooks run as {user}"


def _first(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _revoke(settings: Settings, token: str) -> None:
    from starbox import accounts, database

    with contextlib.suppress(Exception), database.connect_admin(settings) as conn:
        accounts.logout(conn, token)
