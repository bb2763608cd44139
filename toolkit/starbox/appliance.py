"""Bringing the appliance up and down: the cluster, the database, the sample catalogs.

Later parts (the service, JupyterLab, Voila) join the same `up`: it prepares everything that is
missing, then stays in the foreground until Ctrl-C or `starbox down`, and stops cleanly.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from psycopg import sql

from starbox import catalogs, database, keys
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


def prepare(settings: Settings, *, build_catalogs: bool = True, progress: bool = True, log=print) -> Prepared:
    """Everything `up` needs before it serves: idempotent, and fast when already done."""
    t0 = time.perf_counter()
    new_cluster = started = False
    if settings.embedded:
        cluster = Cluster(settings)
        new_cluster = cluster.init()
        started = cluster.start()
    if settings.embedded and (settings.pgdata / "standby.signal").exists():
        from starbox import replica

        if replica.in_recovery(settings):
            raise StarboxError(
                "this home is a hot standby: its PostgreSQL is running and following the "
                "primary, read-only; the service runs on the primary. `starbox replica "
                "promote` makes this one the primary."
            )
    database.ensure_database(settings)
    with database.connect_admin(settings) as conn:
        applied = database.migrate(conn, settings.db_dir)
        conn.execute(
            sql.SQL("ALTER ROLE starbox_service PASSWORD {}").format(sql.Literal(keys.service_password(settings)))
        )
        conn.execute(
            sql.SQL("ALTER ROLE starbox_anon PASSWORD {}").format(
                sql.Literal(keys.role_password(settings, "starbox_anon"))
            )
        )
        built = catalogs.build(conn, settings, progress=progress, log=log) if build_catalogs else []
    return Prepared(new_cluster, started, applied, built, time.perf_counter() - t0)


def connection_help(settings: Settings) -> list[str]:
    lines = ["  starbox psql", f"  DSN: {database.public_dsn(settings)}"]
    if settings.embedded:
        lines[-1] += f"  (password in {keys.path(settings, keys.POSTGRES_PASSWORD)})"
    return lines


def service_help(settings: Settings) -> list[str]:
    base = settings.service_url
    return [
        f"Data Lab API: {base}/auth  {base}/query  {base}/storage  {base}/res",
        "  point the astro-datalab client at it (after importing dl's modules):",
        f"  ac.set_svc_url('{base}/auth'); qc.set_svc_url('{base}/query'); "
        f"sc.set_svc_url('{base}/storage'); rc.set_svc_url('{base}/res')",
        "  or, inside Starbox: from starbox import authClient as ac, queryClient as qc, storeClient as sc",
    ]


def _pidfile(settings: Settings) -> Path:
    return settings.run_dir / "starbox-up.pid"


def _modefile(settings: Settings) -> Path:
    return settings.run_dir / "starbox-up.mode"


def shared_running(settings: Settings) -> bool:
    """Is the running `up` in shared mode (whatever this process's settings say)?"""
    try:
        return _modefile(settings).read_text().strip() == "shared"
    except OSError:
        return settings.shared


def wait_in_foreground(settings: Settings, on_stop, children=(), log=print) -> None:
    """Block until Ctrl-C, SIGTERM (from `starbox down`) or a part dying; then run on_stop."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pidfile = _pidfile(settings)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    pidfile.write_text(str(os.getpid()))
    _modefile(settings).write_text("shared\n" if settings.shared else "personal\n")  # for `starbox status`
    log("Press Ctrl-C to stop.")
    try:
        cluster = Cluster(settings) if settings.embedded else None
        while not stop.wait(1.0):
            if cluster and not cluster.status().running:
                raise StarboxError(f"PostgreSQL stopped unexpectedly; see {cluster.logfile}")
            for child in children:
                if not child.running():
                    raise StarboxError(f"the {child.name} stopped unexpectedly; see {child.log}")
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
    from starbox.catalogs import registry

    with database.connect_admin(settings) as conn:
        return registry.sizes(conn)


def children_status(settings: Settings) -> list[tuple[str, str, "dt.datetime | None"]]:
    """(name, where, running since) of the service, JupyterLab (in shared mode JupyterHub, on its
    public port) and Voilà: up since `up` started them."""
    from starbox.cluster.control import port_in_use

    pidfile = _pidfile(settings)
    since = dt.datetime.fromtimestamp(pidfile.stat().st_mtime, dt.timezone.utc) if pidfile.exists() else None
    local = settings.service_host
    parts = [("service", local, settings.service_port, settings.service_port)]
    if shared_running(settings):  # the hub answers on loopback on its API port, the public on hub_port
        parts.append(("JupyterHub", settings.hub_address, settings.hub_port, settings.hub_api_port))
    else:
        parts.append(("JupyterLab", local, settings.jupyter_port, settings.jupyter_port))
    parts.append(("Voilà", local, settings.voila_port, settings.voila_port))
    return [
        (name, f"{host}:{port}", since if port_in_use("127.0.0.1", probe) else None)
        for name, host, port, probe in parts
    ]


def lab_limits_note(settings: Settings) -> str | None:
    """Shared mode: whether each lab's memory is capped by the system, or only announced."""
    if not shared_running(settings):
        return None
    if Path("/run/systemd/system").is_dir():
        return (
            f"labs: {settings.hub_mem_limit_mb} MB of memory each is announced to them (MEM_LIMIT); "
            "systemd runs here, but Starbox does not yet cap labs through it"
        )
    return (
        f"labs: {settings.hub_mem_limit_mb} MB of memory each is announced to them (MEM_LIMIT) but not enforced: "
        "there is no systemd on this machine (a container or CI) to cap it; a new lab is refused while less "
        f"than {settings.hub_min_free_mb} MB is free"
    )
