"""Bringing the appliance up and down: the cluster, the database, the sample catalogs.

Later parts (the service, JupyterLab, Voila) join the same `up`: it prepares everything that is
missing, then stays in the foreground until Ctrl-C or `starbox down`, and stops cleanly.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from starbox import catalogs, database
from starbox.cluster import Cluster, ClusterStatus
from starbox.errors import StarboxError
from starbox.settings import Settings


@dataclass
class Prepared:
    new_cluster: bool
    started: bool
    migrations: list[str]
    built: list[catalogs.Built]
    seconds: float


def service_password(settings: Settings) -> str:
    """The service role's password, made once and kept under secrets/ (mode 0600)."""
    path = settings.secrets_dir / "service.password"
    if not path.exists():
        settings.secrets_dir.mkdir(parents=True, exist_ok=True)
        settings.secrets_dir.chmod(0o700)
        tmp = path.with_suffix(".part")
        tmp.write_text(secrets.token_urlsafe(24) + "\n")
        tmp.chmod(0o600)
        os.replace(tmp, path)
    return path.read_text().strip()


def prepare(settings: Settings, *, build_catalogs: bool = True, progress: bool = True, log=print) -> Prepared:
    """Everything `up` needs before it serves: idempotent, and fast when already done."""
    t0 = time.perf_counter()
    new_cluster = started = False
    if settings.embedded:
        cluster = Cluster(settings)
        new_cluster = cluster.init()
        started = cluster.start()
    database.ensure_database(settings)
    with database.connect_admin(settings) as conn:
        applied = database.migrate(conn, settings.db_dir)
        conn.execute(sql.SQL("ALTER ROLE starbox_service PASSWORD {}").format(
            sql.Literal(service_password(settings))))
        built = catalogs.build(conn, settings, progress=progress, log=log) if build_catalogs else []
    return Prepared(new_cluster, started, applied, built, time.perf_counter() - t0)


def connection_help(settings: Settings) -> list[str]:
    return [
        "  starbox psql",
        f"  DSN: {database.public_dsn(settings)}",
    ]


def _pidfile(settings: Settings) -> Path:
    return settings.run_dir / "starbox-up.pid"


def wait_in_foreground(settings: Settings, on_stop, log=print) -> None:
    """Block until Ctrl-C, SIGTERM (from `starbox down`) or the cluster dying; then run on_stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pidfile = _pidfile(settings)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))
    log("Press Ctrl-C to stop.")
    try:
        cluster = Cluster(settings) if settings.embedded else None
        while not stop.wait(1.0):
            if cluster and not cluster.status().running:
                raise StarboxError(f"PostgreSQL stopped unexpectedly; see {cluster.logfile}")
    finally:
        pidfile.unlink(missing_ok=True)
        on_stop()


def down(settings: Settings) -> str:
    """Stop a foreground `up` (it cleans up after itself), or else the cluster directly."""
    pidfile = _pidfile(settings)
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text())
            os.kill(pid, signal.SIGTERM)
            for _ in range(600):
                time.sleep(0.1)
                os.kill(pid, 0)
        except (ValueError, ProcessLookupError):
            pass
        else:
            raise StarboxError(f"starbox up (pid {pid}) did not stop within 60 s")
        pidfile.unlink(missing_ok=True)
        return "stopped the running appliance"
    if settings.embedded and Cluster(settings).stop():
        return "stopped PostgreSQL"
    return "nothing was running"


def cluster_status(settings: Settings) -> ClusterStatus | None:
    return Cluster(settings).status() if settings.embedded else None


def catalog_rows(settings: Settings) -> list[tuple]:
    with database.connect_admin(settings) as conn:
        return conn.execute(
            "SELECT schema || '.' || tbl_name, nrows, total_size FROM public.tbl_stat ORDER BY 1"
        ).fetchall()
