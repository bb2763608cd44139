"""Temporary class accounts: a batch of accounts for a course, as Data Lab makes for classrooms.

An instructor runs `starbox accounts class add astro101 --students 30 --days 14` and hands out
the user names and passwords it prints (and writes to a CSV file only they can read). Each
account is an ordinary Starbox account (its own database role, MyDB schema and storage) named
`<class>_NN`, with the class and an end time: after it, logging in is refused with a plain
message and the account's tokens stop working. Tables and files stay until the instructor
removes the class (`starbox accounts class remove`), or every ended class at once (`purge`).
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass

import psycopg

from starbox import account_removal, accounts, database, storage_home
from starbox.errors import StarboxError
from starbox.settings import Settings

CLASS_RE = re.compile(r"^[a-z][a-z0-9]{1,19}$")
MAX_STUDENTS = 500
MAX_DAYS = 366
# Passwords to read off a sheet of paper: no 0/O, 1/l/I, in groups of four.
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


@dataclass(frozen=True)
class ClassInfo:
    name: str
    accounts: int
    expires: dt.datetime
    ended: bool
    sessions: int


def check_class_name(name: str) -> str:
    if not CLASS_RE.match(name or ""):
        raise StarboxError(
            f"invalid class name {name!r}: 2 to 20 lowercase letters and digits, "
            f"starting with a letter (its accounts are named {name or 'name'}_01, ...)"
        )
    if name in accounts.RESERVED:
        raise StarboxError(f"{name!r} is a reserved name")
    return name


def new_password() -> str:
    return "-".join("".join(secrets.choice(_ALPHABET) for _ in range(4)) for _ in range(3))


def usernames(name: str, students: int) -> list[str]:
    width = max(2, len(str(students)))
    return [f"{name}_{i:0{width}d}" for i in range(1, students + 1)]


def create(
    conn: psycopg.Connection, settings: Settings, name: str, students: int, days: float
) -> tuple[dt.datetime, list[tuple[str, str]]]:
    """Make the class's accounts in one transaction (all or none); returns (end, [(user, password)])."""
    check_class_name(name)
    if not 1 <= students <= MAX_STUDENTS:
        raise StarboxError(f"a class has 1 to {MAX_STUDENTS} students, not {students}")
    if not 0 < days <= MAX_DAYS:
        raise StarboxError(f"a class lasts more than 0 and at most {MAX_DAYS} days, not {days:g}")
    names = usernames(name, students)
    with conn.transaction():
        if accounts.class_exists(conn, name):
            raise StarboxError(f"class {name} already exists; remove it first, or choose another name")
        taken = accounts.taken(conn, names)
        if taken:
            raise StarboxError(f"these user names are taken already: {', '.join(taken)}")
        expires = database.scalar(
            conn, "SELECT date_trunc('minute', now() + make_interval(secs => %s))", (days * 86400,)
        )
        issued = []
        for username in names:
            password = new_password()
            accounts.add(conn, settings, username, password, class_name=name, expires=expires)
            issued.append((username, password))
    for username in names:  # after the commit: a failed transaction leaves no folders either
        storage_home.create(settings, username)
    return expires, issued


def list_classes(conn: psycopg.Connection) -> list[ClassInfo]:
    return [ClassInfo(*row) for row in accounts.class_rows(conn)]


def members(conn: psycopg.Connection, name: str) -> list[str]:
    return accounts.class_members(conn, name)


def remove(conn: psycopg.Connection, settings: Settings, name: str) -> list[str]:
    """Delete the class's accounts with their tables, files and jobs; returns the user names."""
    names = members(conn, name)
    if not names:
        raise StarboxError(f"no class named {name!r} (see `starbox accounts class list`)")
    account_removal.remove(conn, settings, names)
    return names


def purge_ended(conn: psycopg.Connection, settings: Settings) -> list[str]:
    """Remove every class whose end has passed; returns the class names."""
    ended = [c.name for c in list_classes(conn) if c.ended]
    for name in ended:
        remove(conn, settings, name)
    return ended


def set_end(conn: psycopg.Connection, name: str, days_from_now: float) -> dt.datetime:
    """Move a class's end (to extend it, or to end it now with 0)."""
    if not 0 <= days_from_now <= MAX_DAYS:
        raise StarboxError(f"the end is 0 to {MAX_DAYS} days from now, not {days_from_now:g}")
    if not members(conn, name):
        raise StarboxError(f"no class named {name!r} (see `starbox accounts class list`)")
    return accounts.set_class_end(conn, name, days_from_now * 86400)
