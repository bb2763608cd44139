"""Hot standby: a second embedded cluster that follows the primary by streaming replication.

On the rack this is the "production / hot standby" pair: the standby replays every change of
the primary within moments, answers read-only SQL, and becomes the primary with `promote` when
the primary's machine dies. (Staging is a copy that does not follow: `starbox backup` on the
primary, `starbox restore` into the staging home.)

    STARBOX_HOME=/srv/standby STARBOX_PG_PORT=5434 \
        starbox replica follow --primary-port 5433 --secrets /srv/starbox/secrets
    starbox replica status             # on either side
    starbox replica promote            # on the standby: it stops following and takes writes

The standby logs in as `starbox_replicator`, a REPLICATION role whose password is derived from
the primary's keys, which is why the standby gets a copy of the primary's `secrets/` (its user
roles' passwords come from the same keys, so a promoted standby serves the same accounts).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from psycopg import sql

from starbox import database, keys
from starbox.cluster import sysuser
from starbox.cluster.control import REPLICATION_HBA as HBA_LINES
from starbox.cluster.control import REPLICATION_ROLE as ROLE
from starbox.cluster.control import Cluster, check_extensions_installed
from starbox.errors import StarboxError
from starbox.settings import Settings


def in_recovery(settings: Settings) -> bool:
    with database.connect_admin(settings, dbname="postgres") as conn:
        return database.scalar(conn, "SELECT pg_is_in_recovery()")


def prepare_primary(settings: Settings) -> None:
    """Let standbys in: the replication role (password from this Starbox's keys), pg_hba lines."""
    if not settings.embedded:
        raise StarboxError("replication is set up by the admin of the server at STARBOX_DATABASE_URL")
    with database.connect_admin(settings, dbname="postgres") as conn:
        if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ROLE,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN REPLICATION").format(sql.Identifier(ROLE)))
        conn.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(ROLE), sql.Literal(keys.role_password(settings, ROLE))
            )
        )
        cluster = Cluster(settings)
        hba = cluster.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        missing = [line for line in HBA_LINES if line not in lines]
        if missing:
            cluster._write_owned(hba, "\n".join(missing + lines) + "\n")  # first: pg_hba is first-match
            conn.execute("SELECT pg_reload_conf()")
        ready = database.scalar(conn, "SELECT current_setting('wal_level') <> 'minimal'")
    if not ready:  # WAL level is fixed at start: a restart is the only way
        cluster._write_owned(cluster.replication_marker, "written by `starbox replica allow`\n")
        cluster._write_conf()
        cluster.restart()


def follow(settings: Settings, primary_host: str, primary_port: int, secrets: Path, log=print) -> None:
    """Make this (empty) home a hot standby of the primary at host:port, and start it."""

    if not settings.embedded:
        raise StarboxError("a standby is an embedded cluster; unset STARBOX_DATABASE_URL")
    cluster = Cluster(settings)
    if cluster.initialized or keys.home_in_use(settings):
        raise StarboxError(f"{settings.home} already holds a Starbox; a standby starts from an empty home")
    secrets = Path(secrets).expanduser()
    if not (secrets / keys.ROLES_KEY).is_file():
        raise StarboxError(f"{secrets} is not the primary's secrets folder (no roles.key in it)")
    check_extensions_installed()
    settings.home.mkdir(parents=True, exist_ok=True)
    keys.ensure_dir(settings)
    for path in secrets.iterdir():
        if path.is_file():
            (settings.secrets_dir / path.name).write_bytes(path.read_bytes())
            os.chmod(settings.secrets_dir / path.name, 0o600)
    user = cluster.user
    sysuser.ensure_traversable(settings.home, user)
    for folder in (settings.run_dir, settings.log_dir / "postgresql"):
        sysuser.make_dir(folder, user, 0o770 if folder == settings.run_dir else 0o700)
    sysuser.make_dir(cluster.pgdata, user)
    secret = f"*:*:*:{ROLE}:{keys.role_password(settings, ROLE)}\n"
    passfile = _owned_file(settings.run_dir / ".replication-pass", secret, user)  # never on a command line
    log(f"copying the primary at {primary_host}:{primary_port} ...")
    t0 = time.perf_counter()
    try:
        cluster._run(
            "pg_basebackup",
            "-D",
            str(cluster.pgdata),
            "-h",
            primary_host,
            "-p",
            str(primary_port),
            "-U",
            ROLE,
            "-X",
            "stream",
            "-R",
            "--checkpoint=fast",
            "--no-password",
            env={"PGPASSFILE": str(passfile)},
        )
    except BaseException:  # a half copy is no standby: leave the home as empty as it was
        passfile.unlink(missing_ok=True)
        for folder in (cluster.pgdata, settings.secrets_dir):
            shutil.rmtree(folder, ignore_errors=True)
        raise
    # -R pointed primary_conninfo at the temporary passfile; the server (the cluster's user, who
    # cannot read secrets/) reads a copy in its own data folder.
    keep = _owned_file(cluster.pgdata / "starbox.replication.pass", secret, user)
    passfile.unlink()
    with (cluster.pgdata / "postgresql.auto.conf").open("a") as fh:  # the last setting wins
        fh.write(f"primary_conninfo = 'host={primary_host} port={primary_port} user={ROLE} passfile=''{keep}'''\n")
    cluster._write_conf()  # this cluster's own port and socket folder, not the primary's
    cluster.start()
    log(
        f"standby of {primary_host}:{primary_port} running on port {settings.pg_port} "
        f"({time.perf_counter() - t0:.1f} s)"
    )


def _owned_file(path: Path, text: str, user) -> Path:
    """A 0600 file the cluster's user owns (it reads it; nobody else may)."""
    path.write_text(text)
    if not user.is_self:
        os.chown(path, user.uid, user.gid)
    path.chmod(0o600)
    return path


def status(settings: Settings) -> dict:
    """This cluster's role in replication: a primary lists its standbys; a standby its lag."""
    with database.connect_admin(settings, dbname="postgres") as conn:
        if database.scalar(conn, "SELECT pg_is_in_recovery()"):
            row = conn.execute(
                "SELECT status, sender_host, sender_port, now() - pg_last_xact_replay_timestamp()"
                " FROM pg_stat_wal_receiver"
            ).fetchone()
            return {
                "role": "standby",
                "receiver": row[0] if row else "not connected",
                "primary": f"{row[1]}:{row[2]}" if row else "",
                "replay_age": row[3] if row else None,
            }
        rows = conn.execute("SELECT client_addr, state, replay_lag FROM pg_stat_replication").fetchall()
        return {
            "role": "primary",
            "standbys": [{"client": str(r[0] or "local"), "state": r[1], "replay_lag": r[2]} for r in rows],
        }


def promote(settings: Settings) -> None:
    """End recovery: the standby stops following and takes writes (the old primary must not
    come back as a primary: rebuild it as a standby of this one)."""
    with database.connect_admin(settings, dbname="postgres") as conn:
        if not database.scalar(conn, "SELECT pg_is_in_recovery()"):
            raise StarboxError("this cluster is not a standby; nothing to promote")
        if not database.scalar(conn, "SELECT pg_promote(wait => true, wait_seconds => 60)"):
            raise StarboxError("the standby did not finish promoting within 60 s; see the PostgreSQL log")
