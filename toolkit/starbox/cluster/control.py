"""initdb, start, stop and status of the embedded cluster under $STARBOX_HOME."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from starbox import keys
from starbox.cluster import sysuser
from starbox.errors import StarboxError
from starbox.settings import Settings

PREFERRED_MAJOR = "15"
SUPERUSER = "postgres"

SERVER_CONF = """\
# Written by Starbox; edit STARBOX_* settings rather than this file.
listen_addresses = '{host}'
port = {port}
unix_socket_directories = '{run_dir}'
unix_socket_permissions = 0770
max_connections = 100
shared_buffers = 512MB
work_mem = 64MB
maintenance_work_mem = 1GB
effective_cache_size = 4GB
random_page_cost = 1.1
jit = off
wal_level = minimal
max_wal_senders = 0
max_wal_size = 4GB
checkpoint_timeout = 15min
password_encryption = scram-sha-256
log_timezone = 'UTC'
timezone = 'UTC'
"""

# pg_hba.conf lines after this one are the admin's (a standby on another machine needs a host
# replication line): Starbox keeps them when it rewrites the file.
HBA_KEEP = "# Lines below this one are kept when Starbox rewrites this file:"

# Standbys log in as this role (starbox.replica); `starbox replica allow` adds these lines first
# (pg_hba is first-match), and a rewrite keeps them. Another machine needs a host line of its own.
REPLICATION_ROLE = "starbox_replicator"
REPLICATION_HBA = (
    f"local replication {REPLICATION_ROLE} scram-sha-256",
    f"host replication {REPLICATION_ROLE} 127.0.0.1/32 scram-sha-256",
    f"host replication {REPLICATION_ROLE} ::1/128 scram-sha-256",
)

# A primary with standbys: WAL they can replay, and senders for them.
REPLICATION_CONF = """\
wal_level = replica
max_wal_senders = 10
wal_keep_size = 1GB
"""


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    pid: int | None = None
    port: int | None = None
    started: dt.datetime | None = None
    pgdata: Path | None = None


@dataclass(frozen=True)
class PgInstall:
    """Where the PostgreSQL server programs and extension files live."""

    major: str
    bindir: Path
    sharedir: Path

    def package(self, what: str = "") -> str:
        """The Debian/Ubuntu package name, e.g. postgresql-15-q3c."""
        return f"postgresql-{self.major}" + (f"-{what}" if what else "")


@lru_cache(maxsize=1)
def pg_install() -> PgInstall:
    """Debian's layout (/usr/lib/postgresql/N), preferring 15; else pg_config on PATH (Nix)."""
    found = sorted(
        (p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")),
        key=lambda v: (v != PREFERRED_MAJOR, -int(v) if v.isdigit() else 0),
    )
    if found:
        major = found[0]
        return PgInstall(major, Path(f"/usr/lib/postgresql/{major}/bin"), Path(f"/usr/share/postgresql/{major}"))
    pg_config = shutil.which("pg_config")
    if pg_config:

        def out(flag: str) -> str:
            return subprocess.run([pg_config, flag], capture_output=True, text=True).stdout.strip()

        version = out("--version").split()[-1]  # "PostgreSQL 15.8"
        return PgInstall(version.split(".")[0], Path(out("--bindir")), Path(out("--sharedir")))
    raise StarboxError(f"PostgreSQL is not installed: apt-get install postgresql-{PREFERRED_MAJOR}")


def check_extensions_installed() -> None:
    """Refuse early, naming the package, when q3c or pgsphere is missing."""
    pg = pg_install()
    for ext, package in (("q3c", "q3c"), ("pg_sphere", "pgsphere")):
        if not (pg.sharedir / "extension" / f"{ext}.control").exists():
            raise StarboxError(f"the {ext} extension is not installed: apt-get install {pg.package(package)}")


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Cluster:
    """The embedded cluster: one data folder, one port, one socket folder."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.pgdata = settings.pgdata
        self._user: sysuser.RunAs | None = None

    @property
    def user(self) -> sysuser.RunAs:
        if self._user is None:
            self._user = sysuser.resolve(self.settings.system_user)
        return self._user

    @property
    def logfile(self) -> Path:
        return self.settings.log_dir / "postgresql" / "postgresql.log"

    @property
    def password_file(self) -> Path:
        return keys.path(self.settings, keys.POSTGRES_PASSWORD)

    def _run(self, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
        # A chmod of a parent folder since init (it happens to root's home) would lock the user out.
        sysuser.ensure_traversable(self.settings.home, self.user)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", "HOME": "/tmp", **(env or {})}
        proc = subprocess.run(
            [str(pg_install().bindir / args[0]), *args[1:]],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",
            **self.user.popen_kwargs(),
        )
        if check and proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise StarboxError(f"{args[0]} failed: {detail[-1] if detail else 'no output'} (log: {self.logfile})")
        return proc

    # -- checks ---------------------------------------------------------------------------
    def check_data_folder(self) -> None:
        """Refuse a data folder made by another PostgreSQL version or owned by another user."""
        version_file = self.pgdata / "PG_VERSION"
        if not version_file.exists():
            if self.pgdata.exists() and any(self.pgdata.iterdir()):
                raise StarboxError(f"{self.pgdata} is not empty and is not a PostgreSQL data folder; move it away")
            return
        version, major = version_file.read_text().strip(), pg_install().major
        if version != major:
            raise StarboxError(
                f"{self.pgdata} was made by PostgreSQL {version}, this is PostgreSQL {major}: "
                f"move it away or set STARBOX_HOME to another folder"
            )
        owner = self.pgdata.stat().st_uid
        if owner != self.user.uid:
            try:
                name = pwd.getpwuid(owner).pw_name
            except KeyError:
                name = f"uid {owner}"
            raise StarboxError(
                f"{self.pgdata} belongs to {name}, but Starbox runs its cluster as {self.user.name}: "
                f"chown -R {self.user.name} {self.pgdata}, or set STARBOX_HOME to another folder"
            )

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def initialized(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> bool:
        """initdb once; returns True when a new cluster was made."""
        check_extensions_installed()
        self.check_data_folder()
        s, user = self.settings, self.user
        s.home.mkdir(parents=True, exist_ok=True)
        sysuser.ensure_traversable(s.home, user)
        for folder in (s.run_dir, s.log_dir / "postgresql"):
            sysuser.make_dir(folder, user, 0o770 if folder == s.run_dir else 0o700)
        keys.ensure_dir(s)
        if self.initialized:
            self._write_conf()
            # A cluster made by an earlier version let every role in over TCP: its pg_hba is
            # rewritten, and a running server reloads it now rather than at its next restart.
            if self._write_hba() and self.status().running:
                self._run("pg_ctl", "reload", "-D", str(self.pgdata))
            return False
        password = secrets.token_urlsafe(24)
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        sysuser.make_dir(self.pgdata, user)
        pwfile = s.run_dir / ".initdb-pw"
        pwfile.write_text(password + "\n")
        if not user.is_self:
            os.chown(pwfile, user.uid, user.gid)
        pwfile.chmod(0o600)
        try:
            self._run(
                "initdb",
                "-D",
                str(self.pgdata),
                "-U",
                SUPERUSER,
                f"--pwfile={pwfile}",
                "--auth-local=peer",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-instructions",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        self._write_hba()
        with (self.pgdata / "postgresql.conf").open("a") as fh:
            fh.write("\ninclude_if_exists = 'starbox.conf'\n")
        self._write_conf()
        return True

    def _write_hba(self) -> bool:
        """pg_hba.conf and pg_ident.conf as this version wants them; True when pg_hba changed.

        On the socket: the cluster's user and root (mapped) as the superuser, by peer; every other
        role (the service's, starbox_anon, each user's) by password. Over TCP only the superuser
        (admins, `starbox psql`) and standbys: a user role's password, even one it managed to set
        itself, opens nothing from the network. The replication lines `starbox replica allow`
        added are kept, first (pg_hba is first-match), and so are the admin's lines below KEEP.
        """
        path = self.pgdata / "pg_hba.conf"
        old = path.read_text() if path.exists() else ""
        lines = old.splitlines()
        replication = [line for line in REPLICATION_HBA if line in lines]
        kept = lines[lines.index(HBA_KEEP) + 1 :] if HBA_KEEP in lines else []
        hba = (
            "\n".join(
                [
                    "# Written by Starbox at every start (starbox/cluster/control.py).",
                    *replication,
                    "local all postgres peer map=starbox",
                    "local all all scram-sha-256",
                    "host all postgres 127.0.0.1/32 scram-sha-256",
                    "host all postgres ::1/128 scram-sha-256",
                    HBA_KEEP,
                    *kept,
                ]
            )
            + "\n"
        )
        if hba != old:
            self._write_owned(path, hba)
        self._write_owned(self.pgdata / "pg_ident.conf", f"starbox {self.user.name} postgres\nstarbox root postgres\n")
        return hba != old

    @property
    def replication_marker(self) -> Path:
        """Present once `starbox replica allow` ran: WAL fit for standbys (copied to them too)."""
        return self.pgdata / "starbox.replication"

    def _write_conf(self) -> None:
        s = self.settings
        conf = SERVER_CONF.format(host=s.pg_host, port=s.pg_port, run_dir=s.run_dir)
        if self.replication_marker.exists():
            conf += REPLICATION_CONF  # later lines win: minimal WAL (fast loads) gives way
        self._write_owned(self.pgdata / "starbox.conf", conf)

    def restart(self) -> None:
        self._run("pg_ctl", "restart", "-D", str(self.pgdata), "-l", str(self.logfile), "-m", "fast", "-w", "-t", "60")

    def _write_owned(self, path: Path, text: str) -> None:
        path.write_text(text)
        if not self.user.is_self:
            os.chown(path, self.user.uid, self.user.gid)
        path.chmod(0o600)

    def status(self) -> ClusterStatus:
        pidfile = self.pgdata / "postmaster.pid"
        if not pidfile.exists():
            return ClusterStatus(False, pgdata=self.pgdata)
        lines = pidfile.read_text().splitlines()
        try:
            pid, started, port = int(lines[0]), int(lines[2]), int(lines[3])
            os.kill(pid, 0)
        except (IndexError, ValueError, ProcessLookupError, PermissionError):
            return ClusterStatus(False, pgdata=self.pgdata)
        when = dt.datetime.fromtimestamp(started, dt.timezone.utc)
        return ClusterStatus(True, pid=pid, port=port, started=when, pgdata=self.pgdata)

    def start(self) -> bool:
        """Start the cluster; returns False when it was already running."""
        if self.status().running:
            return False
        s = self.settings
        if port_in_use(s.pg_host, s.pg_port):
            raise StarboxError(
                f"port {s.pg_port} on {s.pg_host} is taken by another program: stop it or set STARBOX_PG_PORT"
            )
        self._run("pg_ctl", "start", "-D", str(self.pgdata), "-l", str(self.logfile), "-w", "-t", "60")
        return True

    def stop(self) -> bool:
        """Stop the cluster (fast shutdown); returns False when it was not running."""
        if not self.status().running:
            return False
        self._run("pg_ctl", "stop", "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "60")
        return True
