"""Backups of a whole Starbox, and restoring one into an empty Starbox home.

A backup is a folder (easy to copy to another disk or machine with cp, rsync or tar):

* `database.dump`: pg_dump's custom format of the Starbox database: catalogs, every user's MyDB
  tables, accounts, tokens, jobs, TAP_SCHEMA (taken in one snapshot, while the appliance runs);
* `roles.sql`: the Starbox roles of the server (roles live outside databases, so pg_dump has
  none), from pg_dumpall --roles-only;
* `secrets/`: the appliance's keys: the role passwords are derived from them, and signed URLs
  and the service's login need them (the folder is 0700, its files 0600, as in the home);
* `storage/`: every user's files; `notebooks/`: the published lessons;
* `manifest.json`: what is inside, written last: a folder without it is not a backup.

`restore` builds the same Starbox in an empty home: the cluster (embedded) or the server
(STARBOX_DATABASE_URL), the roles, the database, then the files; `starbox up` then serves it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from starbox import __version__, database, keys
from starbox import accounts as accounts_mod
from starbox.errors import StarboxError
from starbox.settings import Settings

MANIFEST = "manifest.json"
FORMAT = 1
ROLE_PREFIX = "starbox_"


def _bin(name: str) -> str:
    from starbox.cluster.control import pg_install

    return str(pg_install().bindir / name)


def _run(args: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [line for line in (proc.stderr or proc.stdout).strip().splitlines() if line.strip()]
        raise StarboxError(f"{what} failed: {lines[-1] if lines else f'exit status {proc.returncode}'}")
    return proc


def _starbox_roles(dumpall_sql: str) -> str:
    """The statements of pg_dumpall --roles-only that are about Starbox's roles only."""
    keep = []
    for line in dumpall_sql.splitlines():
        if not re.match(r"(CREATE|ALTER) ROLE |GRANT ", line):
            continue  # comments, SET, psql's \restrict
        # Memberships name their grantor (the admin); the restoring admin grants them anew.
        line = re.sub(r" GRANTED BY \S+;$", ";", line)
        roles = re.findall(r"\b(?:ROLE|GRANT|TO) (\w+)", line)
        if roles and all(r.startswith(ROLE_PREFIX) for r in roles):
            keep.append(line)
    return "\n".join(keep) + "\n"


def _copy_tree(src: Path, dst: Path) -> int:
    """Copy a folder keeping links as links; returns the number of files."""
    if not src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        return 0
    shutil.copytree(src, dst, symlinks=True, dirs_exist_ok=True)
    return sum(len(files) for _, _, files in os.walk(dst))


def _private_copy(src: Path, dst: Path) -> None:
    dst.mkdir(parents=True, exist_ok=True)
    os.chmod(dst, 0o700)
    for path in src.iterdir():
        if path.is_file():
            shutil.copy2(path, dst / path.name)
            os.chmod(dst / path.name, 0o600)


def create(settings: Settings, dest: Path, log=print) -> Path:
    """Back up the running Starbox into a new folder under `dest`; returns the folder."""
    if not settings.secrets_dir.is_dir():
        raise StarboxError(f"no Starbox at {settings.home} (its secrets folder is missing)")
    dest = Path(dest).expanduser().resolve()
    if dest == settings.home.resolve() or settings.home.resolve() in dest.parents:
        raise StarboxError(
            f"{dest} is inside STARBOX_HOME ({settings.home}): a backup there is lost "
            f"with the home; choose a folder elsewhere, best on another disk"
        )
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder = dest / f"starbox-backup-{stamp}"
    if folder.exists():
        raise StarboxError(f"{folder} exists already")
    part = folder.with_name(f".{folder.name}.part")  # renamed into place only when complete
    part.mkdir(parents=True)
    os.chmod(part, 0o700)
    t0 = time.perf_counter()
    try:
        conninfo = database.admin_conninfo(settings)
        with database.connect_admin(settings) as conn:
            accounts = accounts_mod.usernames(conn)
            pg_version = database.scalar(conn, "SHOW server_version")
        log("dumping the database ...")
        _run(
            [
                _bin("pg_dump"),
                "--format=custom",
                "--compress=6",
                f"--file={part / 'database.dump'}",
                f"--dbname={conninfo}",
            ],
            "pg_dump",
        )
        roles = _run([_bin("pg_dumpall"), "--roles-only", f"--dbname={conninfo}"], "pg_dumpall --roles-only").stdout
        (part / "roles.sql").write_text(_starbox_roles(roles))
        os.chmod(part / "roles.sql", 0o600)  # it holds the roles' password hashes
        _private_copy(settings.secrets_dir, part / "secrets")
        log("copying the files ...")
        files = _copy_tree(settings.storage_dir, part / "storage")
        latest = settings.notebooks_latest
        published = Path(os.path.realpath(latest)).name if latest.exists() else None
        if published:
            _copy_tree(latest, part / "notebooks" / published)
        manifest = {
            "format": FORMAT,
            "created": stamp,
            "starbox": __version__,
            "postgresql": pg_version,
            "database": settings.db_name,
            "accounts": accounts,
            "storage_files": files,
            "notebooks": published,
            "dump_bytes": (part / "database.dump").stat().st_size,
        }
        (part / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        os.replace(part, folder)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    log(f"backed up {len(accounts)} accounts, {files} files and the database in {time.perf_counter() - t0:.1f} s")
    return folder


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        raise StarboxError(f"{folder} is not a Starbox backup (no readable {MANIFEST})") from None
    if manifest.get("format") != FORMAT:
        raise StarboxError(f"{folder} is a backup of format {manifest.get('format')}; this Starbox reads {FORMAT}")
    for name in ("database.dump", "roles.sql", "secrets"):
        if not (Path(folder) / name).exists():
            raise StarboxError(f"{folder} is incomplete: {name} is missing")
    return manifest


def _refuse_unless_empty(settings: Settings) -> None:
    from starbox.cluster.control import Cluster

    if keys.home_in_use(settings) or (settings.embedded and Cluster(settings).initialized):
        raise StarboxError(
            f"{settings.home} already holds a Starbox; restore goes into an empty home "
            f"(set STARBOX_HOME to a new folder)"
        )
    if settings.embedded:
        return
    with database.connect_admin(settings) as conn:
        if conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'starbox'").fetchone():
            raise StarboxError(
                "the database of STARBOX_DATABASE_URL already holds a Starbox; restore goes into an empty database"
            )


def _apply_roles(settings: Settings, roles_sql: str) -> None:
    """Create the roles (a role the server has already is brought to the backed-up settings)."""
    with database.connect_admin(settings, dbname="postgres") as conn:
        for statement in filter(None, (s.strip() for s in roles_sql.splitlines())):
            try:
                conn.execute(statement)
            except psycopg.errors.DuplicateObject:
                pass


def restore(settings: Settings, folder: Path, log=print) -> dict:
    """Rebuild the backed-up Starbox in the (empty) home of `settings`; returns the manifest."""
    from starbox import appliance
    from starbox.cluster.control import Cluster

    folder = Path(folder).expanduser().resolve()
    manifest = read_manifest(folder)
    _refuse_unless_empty(settings)
    t0 = time.perf_counter()
    settings.home.mkdir(parents=True, exist_ok=True)
    _private_copy(folder / "secrets", settings.secrets_dir)
    if settings.embedded:
        cluster = Cluster(settings)
        cluster.init()
        cluster.start()
    _apply_roles(settings, (folder / "roles.sql").read_text())
    database.ensure_database(settings)
    log("restoring the database ...")
    # --exit-on-error: a failed restore must not look like a finished one.
    _run(
        [
            _bin("pg_restore"),
            "--exit-on-error",
            "--jobs=2",
            f"--dbname={database.admin_conninfo(settings)}",
            str(folder / "database.dump"),
        ],
        "pg_restore",
    )
    log("copying the files ...")
    _copy_tree(folder / "storage", settings.storage_dir)
    if manifest.get("notebooks"):
        target = settings.notebooks_versions / manifest["notebooks"]
        _copy_tree(folder / "notebooks" / manifest["notebooks"], target)
        link = settings.notebooks_latest.with_name(f".{settings.notebooks_latest.name}.restore")
        link.unlink(missing_ok=True)
        link.symlink_to(target)
        os.replace(link, settings.notebooks_latest)
    # Newer code may bring migrations the backup predates; the service logins get their passwords.
    appliance.prepare(settings, build_catalogs=False, progress=False, log=log)
    keys.service_password(settings)
    log(
        f"restored {len(manifest['accounts'])} accounts and {manifest['storage_files']} files "
        f"in {time.perf_counter() - t0:.1f} s; `starbox up` serves them"
    )
    return manifest
