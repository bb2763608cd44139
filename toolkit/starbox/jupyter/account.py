"""The local Starbox account the Jupyter kernels run as, and its token."""

from __future__ import annotations

import secrets

from starbox.settings import Settings

from .paths import password_file, token_file, write_private


def ensure_local_user(settings: Settings, min_days_left: int = 7) -> str:
    """The local user's token for the Jupyter kernels; the account is made here if missing.

    Its password (random) is kept in `password_file(settings)`. The token in `token_file(settings)`
    (0600) is reused while it is valid for at least `min_days_left` more days; otherwise it is
    revoked and a new one issued. Calling this again never disturbs running kernels.
    """
    from starbox import accounts, database, storage_home

    name = settings.local_user
    path = token_file(settings)
    with database.connect_admin(settings) as conn:
        if not conn.execute("SELECT 1 FROM starbox.accounts WHERE username = %s", (name,)).fetchone():
            password = secrets.token_urlsafe(18)
            write_private(password_file(settings), password + "\n")
            accounts.add(conn, settings, name, password)
        uid = conn.execute("SELECT uid FROM starbox.accounts WHERE username = %s", (name,)).fetchone()[0]
        storage_home.create(settings, name)
        old = path.read_text().strip() if path.exists() else ""
        parsed = accounts.parse_token(old)
        if parsed and accounts.resolve(conn, old) == accounts.User(name, uid):
            fresh = conn.execute(
                "SELECT expires > now() + make_interval(days => %s) FROM starbox.tokens"
                " WHERE secret_sha256 = %s AND username = %s",
                (min_days_left, accounts._sha(parsed[2][3:]), name)).fetchone()
            if fresh and fresh[0]:
                return old
        if old:
            accounts.logout(conn, old)
        token = accounts.issue_token(conn, accounts.User(name, uid))
    write_private(path, token + "\n")
    return token
