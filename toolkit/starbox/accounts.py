"""Accounts, passwords and tokens.

Passwords are hashed with argon2. A token is Data Lab's `user.uid.gid.$1$<secret>`; only a
SHA-256 of the random secret is stored, so a stolen database does not yield live tokens.
Each account owns a PostgreSQL LOGIN role (`starbox_u_<name>`, in `starbox_users`) and a MyDB
schema (`mydb_<name>`); the service runs the user's SQL on connections logged in as that role.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from psycopg import sql

from starbox import database, keys
from starbox.errors import Forbidden, StarboxError
from starbox.settings import Settings

ANON_TOKEN = "anonymous.0.0.anon_access"
TOKEN_RE = re.compile(r"^([^/\s]+)\.(\d+)\.(\d+)\.((?:\$1\$\S{22,})|(?:\S+_access))$")
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
RESERVED = {
    "anonymous",
    "dldemo",
    "dltest",
    "public",
    "postgres",
    "root",
    "starbox",
    "admin",
    "mydb",
    "vos",
    "tmp",
    "tap",
    "ivoa",
    "system",
}
TOKEN_LIFETIME = dt.timedelta(days=30)
_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password")


@dataclass(frozen=True)
class User:
    name: str
    uid: int = 0

    @property
    def anonymous(self) -> bool:
        return self.name == "anonymous"

    @property
    def role(self) -> str:
        return "starbox_anon" if self.anonymous else role_name(self.name)

    @property
    def schema(self) -> str | None:
        return None if self.anonymous else schema_name(self.name)


ANONYMOUS = User("anonymous", 0)


def role_name(username: str) -> str:
    return f"starbox_u_{username}"


def schema_name(username: str) -> str:
    return f"mydb_{username}"


def check_username(username: str) -> str:
    if not USERNAME_RE.match(username or ""):
        raise StarboxError(
            f"invalid user name {username!r}: 2-30 lower-case letters, digits or _, starting with a letter"
        )
    if username in RESERVED:
        raise StarboxError(f"user name {username!r} is reserved")
    return username


def check_password(password: str) -> str:
    if not password or len(password) < 6:
        raise StarboxError("the password must have at least 6 characters")
    return password


# --- administration (an admin connection; the CLI) ----------------------------------------


def add(
    conn: psycopg.Connection,
    settings: Settings,
    username: str,
    password: str,
    *,
    class_name: str | None = None,
    expires: dt.datetime | None = None,
) -> User:
    """Create the account, its database role and its MyDB schema, in one transaction.
    A class account (starbox.classes) carries its class and the time it ends."""
    check_username(username)
    check_password(password)
    role, schema = role_name(username), schema_name(username)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM starbox.accounts WHERE username = %s", (username,)).fetchone():
            raise StarboxError(f"user {username} already exists")
        uid = database.scalar(
            conn,
            "INSERT INTO starbox.accounts (username, uid, password_hash, class, expires)"
            " VALUES (%s, nextval('starbox.account_uid'), %s, %s, %s) RETURNING uid",
            (username, _hasher.hash(password), class_name, expires),
        )
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN IN ROLE starbox_users").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(keys.role_password(settings, role))
            )
        )
        # A ceiling for anything that slips past the per-query timeout.
        conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = '24h'").format(sql.Identifier(role)))
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(role)
            )
        )
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL("ALTER ROLE {} SET search_path = {}, public").format(sql.Identifier(role), sql.Identifier(schema))
        )
    return User(username, uid)


def list_accounts(conn: psycopg.Connection) -> list[tuple]:
    """(username, uid, disabled, created, sessions, expires) of every account."""
    return conn.execute(
        "SELECT a.username, a.uid, a.disabled, a.created,"
        " (SELECT count(*) FROM starbox.tokens t WHERE t.username = a.username AND NOT t.revoked"
        "  AND t.expires > now()) AS sessions, a.expires"
        " FROM starbox.accounts a ORDER BY a.username"
    ).fetchall()


def usernames(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT username FROM starbox.accounts ORDER BY username")]


def taken(conn: psycopg.Connection, names: list[str]) -> list[str]:
    """Those of `names` that are accounts already."""
    return [r[0] for r in conn.execute("SELECT username FROM starbox.accounts WHERE username = ANY(%s)", (names,))]


# --- classes: accounts that share a class name and an end (starbox.classes decides the rules) ---


def class_exists(conn: psycopg.Connection, name: str) -> bool:
    return conn.execute("SELECT 1 FROM starbox.accounts WHERE class = %s LIMIT 1", (name,)).fetchone() is not None


def class_rows(conn: psycopg.Connection) -> list[tuple]:
    """(class, students, end, ended, open sessions) of every class."""
    return conn.execute(
        "SELECT a.class, count(*), max(a.expires), bool_and(a.expires <= now()),"
        " (SELECT count(*) FROM starbox.tokens t JOIN starbox.accounts b USING (username)"
        "  WHERE b.class = a.class AND NOT t.revoked AND t.expires > now())"
        " FROM starbox.accounts a WHERE a.class IS NOT NULL GROUP BY a.class ORDER BY a.class"
    ).fetchall()


def class_members(conn: psycopg.Connection, name: str) -> list[str]:
    return [
        r[0] for r in conn.execute("SELECT username FROM starbox.accounts WHERE class = %s ORDER BY username", (name,))
    ]


def set_class_end(conn: psycopg.Connection, name: str, seconds_from_now: float) -> dt.datetime:
    """Every member's account ends then (to the minute); ending now also ends their sessions."""
    with conn.transaction():
        expires = database.scalar(
            conn,
            "UPDATE starbox.accounts SET expires = date_trunc('minute', now() + make_interval(secs => %s))"
            " WHERE class = %s RETURNING expires",
            (seconds_from_now, name),
        )
        if seconds_from_now == 0:
            conn.execute(
                "UPDATE starbox.tokens SET revoked = true WHERE username IN"
                " (SELECT username FROM starbox.accounts WHERE class = %s)",
                (name,),
            )
    return expires


def session_state(conn: psycopg.Connection, username: str, session_prefix: str) -> tuple | None:
    """(uid, disabled, ended, session open) of an account, where the session is the open token
    whose stored hash starts with `session_prefix`; None if there is no such account."""
    return conn.execute(
        "SELECT a.uid, a.disabled, a.expires IS NOT NULL AND a.expires <= now(),"
        " %s <> '' AND EXISTS (SELECT 1 FROM starbox.tokens t WHERE t.username = a.username"
        "         AND left(t.secret_sha256, %s) = %s AND NOT t.revoked AND t.expires > now())"
        " FROM starbox.accounts a WHERE a.username = %s",
        (session_prefix, len(session_prefix), session_prefix, username),
    ).fetchone()


def _require(conn: psycopg.Connection, username: str) -> None:
    if not conn.execute("SELECT 1 FROM starbox.accounts WHERE username = %s", (username,)).fetchone():
        raise StarboxError(f"no such user: {username}")


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    """New password; every open session of the user is logged out."""
    check_password(password)
    with conn.transaction():
        _require(conn, username)
        conn.execute(
            "UPDATE starbox.accounts SET password_hash = %s, password_set = now() WHERE username = %s",
            (_hasher.hash(password), username),
        )
        conn.execute("UPDATE starbox.tokens SET revoked = true WHERE username = %s", (username,))


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool = True) -> None:
    with conn.transaction():
        _require(conn, username)
        conn.execute("UPDATE starbox.accounts SET disabled = %s WHERE username = %s", (disabled, username))
        if disabled:
            conn.execute("UPDATE starbox.tokens SET revoked = true WHERE username = %s", (username,))
        conn.execute(
            sql.SQL("ALTER ROLE {} {}").format(
                sql.Identifier(role_name(username)), sql.SQL("NOLOGIN" if disabled else "LOGIN")
            )
        )


def uid_of(conn: psycopg.Connection, username: str) -> int | None:
    """The account's uid (enabled or not), None when there is no such account."""
    row = conn.execute("SELECT uid FROM starbox.accounts WHERE username = %s", (username,)).fetchone()
    return row[0] if row else None


def empty_mydb(conn: psycopg.Connection, username: str) -> None:
    """Drop the account's MyDB tables: its schema made again, empty (the role stays: the
    service may pool its sessions)."""
    schema = sql.Identifier(schema_name(username))
    with conn.transaction():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(schema, sql.Identifier(role_name(username))))
        conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))


def remove(conn: psycopg.Connection, username: str) -> None:
    """Delete the account with its MyDB schema (and tables), role and tokens; its jobs and
    files are account_removal's to remove with it."""
    role = role_name(username)
    with conn.transaction():
        _require(conn, username)
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema_name(username))))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        conn.execute("DELETE FROM starbox.accounts WHERE username = %s", (username,))


# --- the service (a starbox_service connection) --------------------------------------------


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# An account may act while it is enabled and its class (if any) has not ended.
ACTIVE = "NOT a.disabled AND (a.expires IS NULL OR a.expires > now())"


def verify_password(conn: psycopg.Connection, username: str, password: str) -> User | None:
    row = conn.execute(
        f"SELECT a.uid, a.password_hash, {ACTIVE} FROM starbox.accounts a WHERE a.username = %s", (username,)
    ).fetchone()
    stored = row[1] if row else _DUMMY_HASH  # same work for unknown users: no timing oracle
    ok: bool
    try:
        ok = _hasher.verify(stored, password or "")
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or row is None or not row[2]:
        return None
    return User(username, row[0])


def login(conn: psycopg.Connection, username: str, password: str) -> str:
    """A new token for the user, or StarboxError('Invalid password') and the like."""
    return issue_token(conn, check_login(conn, username, password))


def check_login(conn: psycopg.Connection, username: str, password: str) -> User:
    """The user these credentials log in, or StarboxError with the reason in plain words (the
    same words for the API's login and the hub's login page)."""
    if not password:
        raise StarboxError("No password supplied")
    user = verify_password(conn, username, password)
    if user is None:
        known = conn.execute(
            "SELECT disabled, expires, expires <= now() FROM starbox.accounts WHERE username = %s", (username,)
        ).fetchone()
        if known is None:
            raise StarboxError("Invalid user")
        disabled, expires, ended = known
        if disabled:
            raise StarboxError("Account is disabled")
        if ended:
            raise StarboxError(f"Account expired on {expires:%Y-%m-%d %H:%M %Z}; ask your instructor")
        raise StarboxError("Invalid password")
    return user


def issue_token(conn: psycopg.Connection, user: User) -> str:
    secret = secrets.token_urlsafe(24).replace("/", "_")  # 32 characters, no '/' (the client's regex)
    conn.execute(
        "INSERT INTO starbox.tokens (secret_sha256, username, expires) VALUES (%s, %s, now() + %s)",
        (_sha(secret), user.name, TOKEN_LIFETIME),
    )
    return f"{user.name}.{user.uid}.{user.uid}.$1${secret}"


def parse_token(token: str | None) -> tuple[str, int, str] | None:
    """(user, uid, secret) of a well-formed token, else None."""
    match = TOKEN_RE.match((token or "").strip())
    if not match:
        return None
    user, uid, _, secret = match.groups()
    return user, int(uid), secret


def resolve(conn: psycopg.Connection, token: str | None) -> User | None:
    """The user a token stands for: ANONYMOUS for the anonymous token, None if not valid."""
    token = (token or "").strip()
    if token == ANON_TOKEN:
        return ANONYMOUS
    parsed = parse_token(token)
    if parsed is None or not parsed[2].startswith("$1$"):
        return None
    name, uid, secret = parsed
    row = conn.execute(
        "SELECT a.uid FROM starbox.tokens t JOIN starbox.accounts a USING (username)"
        f" WHERE t.secret_sha256 = %s AND t.username = %s AND NOT t.revoked AND t.expires > now() AND {ACTIVE}",
        (_sha(secret[3:]), name),
    ).fetchone()
    if row is None or row[0] != uid:
        return None
    return User(name, uid)


def logout(conn: psycopg.Connection, token: str) -> bool:
    parsed = parse_token(token)
    if parsed is None or not parsed[2].startswith("$1$"):
        return False
    cur = conn.execute(
        "UPDATE starbox.tokens SET revoked = true WHERE secret_sha256 = %s AND username = %s AND NOT revoked",
        (_sha(parsed[2][3:]), parsed[0]),
    )
    return cur.rowcount > 0


def token_lasts(conn: psycopg.Connection, token: str, days: int) -> bool:
    """Whether a valid token stays valid for at least `days` more days."""
    user = resolve(conn, token)
    if user is None or user.anonymous:
        return False
    parsed = parse_token(token)
    if parsed is None:
        return False
    name, _uid, secret = parsed
    row = conn.execute(
        "SELECT expires > now() + make_interval(days => %s) FROM starbox.tokens"
        " WHERE secret_sha256 = %s AND username = %s",
        (days, _sha(secret[3:]), name),
    ).fetchone()
    return bool(row and row[0])


@dataclass(frozen=True)
class Standing:
    """What the hub needs to know of an account: may it act now, its class and when that ends."""

    active: bool
    class_name: str | None
    expires: dt.datetime | None


def standing(conn: psycopg.Connection, username: str) -> Standing | None:
    """The account's standing, or None when there is no such account."""
    row = conn.execute(
        f"SELECT {ACTIVE}, a.class, a.expires FROM starbox.accounts a WHERE a.username = %s", (username,)
    ).fetchone()
    return Standing(bool(row[0]), row[1], row[2]) if row else None


def inactive_among(conn: psycopg.Connection, usernames: list[str]) -> list[str]:
    """Those of `usernames` that may not act now: disabled, ended, or no longer an account."""
    active = {
        r[0]
        for r in conn.execute(
            f"SELECT a.username FROM starbox.accounts a WHERE a.username = ANY(%s) AND {ACTIVE}", (list(usernames),)
        )
    }
    return sorted(set(usernames) - active)


def user_exists(conn: psycopg.Connection, username: str) -> bool:
    return (
        conn.execute(f"SELECT 1 FROM starbox.accounts a WHERE a.username = %s AND {ACTIVE}", (username,)).fetchone()
        is not None
    )


def user_logged_in(conn: psycopg.Connection, username: str) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM starbox.tokens WHERE username = %s AND NOT revoked AND expires > now()", (username,)
        ).fetchone()
        is not None
    )


def change_own_password(conn: psycopg.Connection, user: User, username: str, password: str) -> str:
    """passwordReset: a logged-in user sets a new password for themself; returns a new token."""
    if user.anonymous or user.name != username:
        raise StarboxError("Error: a user may only reset their own password")
    check_password(password)
    with conn.transaction():
        conn.execute(
            "UPDATE starbox.accounts SET password_hash = %s, password_set = now() WHERE username = %s",
            (_hasher.hash(password), username),
        )
        conn.execute("UPDATE starbox.tokens SET revoked = true WHERE username = %s", (username,))
        return issue_token(conn, user)


# --- the user record of Data Lab's resClient (getUser, setUser, listFields) ---------------------

# field -> (column, whether its owner may change it)
PROFILE_FIELDS = {
    "username": ("username", False),
    "email": ("email", True),
    "name": ("full_name", True),
    "institute": ("institute", True),
    "created": ("created", False),
}
PROFILE_MAX = 256  # characters of a field's value
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _profile_column(field: str) -> tuple[str, bool]:
    if field not in PROFILE_FIELDS:
        raise StarboxError(f"Error: no field {field!r} in a user record; the fields are {', '.join(PROFILE_FIELDS)}")
    return PROFILE_FIELDS[field]


def profile_field(conn: psycopg.Connection, username: str, field: str) -> str:
    """One field of the account's user record, as text ('' when unset)."""
    column, _ = _profile_column(field)
    _require(conn, username)
    row = conn.execute(
        sql.SQL("SELECT {} FROM starbox.accounts WHERE username = %s").format(sql.Identifier(column)), (username,)
    ).fetchone()
    value = row[0] if row else None
    return "" if value is None else (value.isoformat() if isinstance(value, dt.datetime) else str(value))


def set_profile_field(conn: psycopg.Connection, username: str, field: str, value: str) -> None:
    """Change one field its owner may change; '' clears it."""
    column, writable = _profile_column(field)
    if not writable:
        raise Forbidden(f"Error: the field {field!r} is not yours to change")
    value = (value or "").strip()
    if len(value) > PROFILE_MAX:
        raise StarboxError(f"Error: a {field} is at most {PROFILE_MAX} characters")
    if field == "email" and value and not EMAIL_RE.match(value):
        raise StarboxError(f"Error: {value!r} is not an email address")
    _require(conn, username)
    conn.execute(
        sql.SQL("UPDATE starbox.accounts SET {} = %s WHERE username = %s").format(sql.Identifier(column)),
        (value or None, username),
    )
