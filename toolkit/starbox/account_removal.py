"""Removing accounts with everything they own: role, MyDB, tokens (accounts), jobs and their
files (jobs), storage (storage_home). It sits above those three so none of them imports another."""

from __future__ import annotations

import psycopg

from starbox import accounts, jobs, storage_home
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
