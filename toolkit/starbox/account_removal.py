"""Removing accounts with everything they own: role, MyDB, tokens (accounts), jobs and their
files (jobs), storage (storage_home), and in shared mode their Unix user with its home and
processes (jupyter.hub.unix). It sits above those so none of them imports another."""

from __future__ import annotations

import sys

import psycopg

from starbox import accounts, jobs, storage_home
from starbox.errors import StarboxError
from starbox.settings import Settings


def remove(conn: psycopg.Connection, settings: Settings, usernames: list[str]) -> None:
    """All of them or none in the database; the folders go after the commit, so a failure
    leaves no account without its files."""
    with conn.transaction():
        for username in usernames:
            accounts.remove(conn, username)
            jobs.remove_owner(conn, username)
    for username in usernames:
        storage_home.remove(settings, username)
    _remove_unix_users(settings, usernames)


def _remove_unix_users(settings: Settings, usernames: list[str]) -> None:
    """The hub's Unix users of these accounts (their labs die with their processes). The accounts
    are gone already: a user that cannot be removed is reported, not a reason to fail."""
    from starbox.jupyter.hub import unix  # light: pwd and subprocess

    for username in usernames:
        if unix.lookup(settings, username) is None:
            continue
        try:
            unix.remove_user(settings, username)
        except StarboxError as exc:
            print(f"warning: {username}'s Unix user stays: {exc}", file=sys.stderr)
