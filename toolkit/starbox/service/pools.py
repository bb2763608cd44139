"""Database connections of the service.

- `state`: starbox_service, for accounts, tokens and jobs.
- one small pool per user role (and one for starbox_anon): user SQL runs on connections that
  are logged in as the user's own role, so nothing inside that SQL can reach a role with more
  rights than the user (RESET ROLE lands on the user itself). Each is sized for the queries the
  admission lets in (starbox.service.admission) plus the async job workers, so an admitted
  query does not wait for a connection.
- `metadata`: starbox_anon too (read-only), but apart from anonymous queries, for TAP_SCHEMA and
  catalog lookups (/query/schema, VOSI tables, the units of every VOTable result): slow anonymous
  queries never make metadata wait.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from starbox import keys
from starbox.accounts import ANONYMOUS, User
from starbox.errors import Unavailable
from starbox.settings import Settings

MAX_USER_POOLS = 64


def conninfo(settings: Settings, role: str, password: str) -> str:
    if settings.database_url:
        base = conninfo_to_dict(settings.database_url)
        base.pop("password", None)
        base.pop("user", None)
        return make_conninfo(**base, user=role, password=password)
    return make_conninfo(
        host=str(settings.run_dir), port=settings.pg_port, dbname=settings.db_name, user=role, password=password
    )


def _reset(conn: psycopg.Connection) -> None:
    """Back in the pool: forget whatever the user's SQL SET for the session (role, GUCs, temp)."""
    conn.autocommit = True  # DISCARD ALL refuses to run inside a transaction block
    try:
        conn.execute("DISCARD ALL")
    finally:
        conn.autocommit = False


class Pools:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.state = ConnectionPool(
            conninfo(settings, "starbox_service", keys.service_password(settings)),
            min_size=1,
            max_size=8,
            kwargs={"autocommit": True},
            name="state",
            open=True,
        )
        self.metadata_pool = ConnectionPool(
            conninfo(settings, "starbox_anon", keys.role_password(settings, "starbox_anon")),
            min_size=0,
            max_size=4,
            max_idle=300,
            name="metadata",
            open=True,
            reset=_reset,
            kwargs={"application_name": "starbox:metadata", "prepare_threshold": None},
        )
        self._users: OrderedDict[str, ConnectionPool] = OrderedDict()
        self._lock = threading.Lock()

    def _user_pool(self, role: str) -> ConnectionPool:
        with self._lock:
            pool = self._users.get(role)
            if pool is not None:
                self._users.move_to_end(role)
                return pool
            s = self.settings
            admitted = s.anon_queries_in_flight if role == ANONYMOUS.role else s.user_queries_in_flight
            pool = ConnectionPool(
                conninfo(s, role, keys.role_password(s, role)),
                # + 1: a user's MyDB calls, which are not admitted as queries
                min_size=0,
                max_size=admitted + max(1, s.job_workers) + 1,
                max_idle=300,
                name=role,
                open=True,
                reset=_reset,
                # No client-side prepared statements: DISCARD ALL (the reset) would drop them.
                kwargs={"application_name": f"starbox:{role}", "prepare_threshold": None},
            )
            self._users[role] = pool
            while len(self._users) > MAX_USER_POOLS:
                _, old = self._users.popitem(last=False)
                old.close(timeout=0)
            return pool

    @contextmanager
    def user(self, user: User, timeout: float = 30):
        """A connection logged in as the user's own role (anonymous: starbox_anon)."""
        try:
            with self._user_pool(user.role).connection(timeout=timeout) as conn:
                yield conn
        except PoolTimeout:
            raise Unavailable("Error: the database is busy; try again in a moment") from None

    @contextmanager
    def metadata(self):
        """A read-only connection (starbox_anon) for TAP_SCHEMA and catalog lookups."""
        try:
            with self.metadata_pool.connection(timeout=30) as conn:
                yield conn
        except PoolTimeout:
            raise Unavailable("Error: the database is busy; try again in a moment") from None

    @contextmanager
    def state_conn(self):
        try:
            with self.state.connection(timeout=30) as conn:
                yield conn
        except PoolTimeout:
            raise Unavailable("Error: the database is busy; try again in a moment") from None

    def forget(self, user: User) -> None:
        """Close a user's pool (their account changed or was removed)."""
        with self._lock:
            pool = self._users.pop(user.role, None)
        if pool:
            pool.close(timeout=0)

    def close(self) -> None:
        with self._lock:
            pools = list(self._users.values())
            self._users.clear()
        for pool in pools:
            pool.close(timeout=1)
        self.metadata_pool.close(timeout=1)
        self.state.close(timeout=1)


def check_connection(settings: Settings) -> None:
    """Fail fast, with a clear message, when the service cannot log in."""
    with psycopg.connect(conninfo(settings, "starbox_service", keys.service_password(settings))):
        pass
