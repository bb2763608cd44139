"""The local Starbox account the Jupyter kernels run as, and its token."""

from __future__ import annotations

import secrets

from starbox import accounts, database, keys, storage_home
from starbox.settings import Settings

from .paths import write_private


def ensure_local_user(settings: Settings, min_days_left: int = 7) -> str:
    """The local user's token for the Jupyter kernels; the account is made here if missing.

    Its password (random) is kept in `keys.local_password_file(settings)`. The token in `keys.local_token_file(settings)`
    (0600) is reused while it is valid for at least `min_days_left` more days; otherwise it is
    revoked and a new one issued. Calling this again never disturbs running kernels.
    """
    name = settings.local_user
    path = keys.local_token_file(settings)
    with database.connect_admin(settings) as conn:
        uid = accounts.uid_of(conn, name)
        if uid is None:
            password = secrets.token_urlsafe(18)
            write_private(keys.local_password_file(settings), password + "\n")
            uid = accounts.add(conn, settings, name, password).uid
        storage_home.create(settings, name)
        old = path.read_text().strip() if path.exists() else ""
        if accounts.resolve(conn, old) == accounts.User(name, uid) and accounts.token_lasts(conn, old, min_days_left):
            return old
        if old:
            accounts.logout(conn, old)
        token = accounts.issue_token(conn, accounts.User(name, uid))
    write_private(path, token + "\n")
    return token
