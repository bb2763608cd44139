"""Connections to the Starbox database and the migrations that build it from db/*.sql."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from starbox.errors import StarboxError
from starbox.settings import Settings

MIGRATIONS_TABLE = "starbox_meta.migrations"


def admin_conninfo(settings: Settings, dbname: str | None = None) -> str:
    """Conninfo of a role that may build the database: the embedded superuser or the admin's URL."""
    if settings.database_url:
        return make_conninfo(settings.database_url, **({"dbname": dbname} if dbname else {}))
    return make_conninfo(
        host=str(settings.run_dir),
        port=settings.pg_port,
        user="postgres",
        dbname=dbname or settings.db_name,
    )


def scalar(conn: psycopg.Connection | psycopg.Cursor, query, params=None):
    """The one value a query that always answers one row gives (a count, a setting, RETURNING)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise StarboxError("Error: the database answered no row where one was certain")
    return row[0]


def public_dsn(settings: Settings) -> str:
    """A DSN to print for people: TCP on the embedded port, or the admin's URL without password."""
    if settings.database_url:
        info = conninfo_to_dict(settings.database_url)
        info.pop("password", None)
        return make_conninfo("", **info)
    return f"postgresql://postgres@{settings.pg_host}:{settings.pg_port}/{settings.db_name}"


def connect_admin(settings: Settings, dbname: str | None = None) -> psycopg.Connection:
    """An autocommit admin connection: callers group their work with conn.transaction()."""
    try:
        return psycopg.connect(admin_conninfo(settings, dbname), autocommit=True)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "connection failed"
        raise StarboxError(f"cannot connect to the database: {first}") from None


def ensure_database(settings: Settings) -> bool:
    """Create the embedded cluster's database if missing; returns True when created.

    With STARBOX_DATABASE_URL the admin names an existing database, and we use it as it is.
    """
    if settings.database_url:
        return False
    with connect_admin(settings, dbname="postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (settings.db_name,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(settings.db_name)))
        return True


def migration_files(db_dir: Path) -> list[Path]:
    return sorted(p for p in db_dir.glob("[0-9][0-9][0-9]_*.sql"))


def migrate(conn: psycopg.Connection, db_dir: Path) -> list[str]:
    """Apply db/NNN_*.sql in order; each file once per checksum, each in its own transaction.

    The files are written to be idempotent, so a changed file is simply applied again.
    Returns the names applied now.
    """
    conn.execute("CREATE SCHEMA IF NOT EXISTS starbox_meta")
    conn.execute(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
        " name text PRIMARY KEY, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done: dict[str, str] = dict(conn.execute(f"SELECT name, checksum FROM {MIGRATIONS_TABLE}").fetchall())
    applied = []
    for path in migration_files(db_dir):
        text = path.read_text()
        checksum = hashlib.sha256(text.encode()).hexdigest()
        if done.get(path.name) == checksum:
            continue
        try:
            with conn.transaction():
                conn.execute(text)
                conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (name, checksum) VALUES (%s, %s)"
                    " ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()",
                    (path.name, checksum),
                )
        except psycopg.Error as exc:
            raise StarboxError(f"{path.name} failed: {str(exc).strip().splitlines()[0]}") from None
        applied.append(path.name)
    return applied
