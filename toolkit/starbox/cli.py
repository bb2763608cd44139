"""The `starbox` command: one CLI for operations."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from starbox import appliance, database, db_errors
from starbox import settings as settings_mod
from starbox.errors import StarboxError

app = typer.Typer(
    help="Starbox: an astronomy science platform in one box.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
catalog_app = typer.Typer(help="Catalogs: list, inspect, load, drop and build.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
# soft_wrap: long lines (URLs, DSNs) stay whole when the output is not a terminal.
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _settings():
    return settings_mod.get()


@app.command()
def up(
    catalogs: bool = typer.Option(True, help="Build the sample catalogs that are missing."),
    foreground: bool = typer.Option(
        True,
        help="Start the services and stay in the foreground until Ctrl-C; --no-foreground only prepares the database.",
    ),
    shared: Optional[bool] = typer.Option(
        None,
        "--shared/--personal",
        help="Shared: JupyterHub with Starbox logins on the public HTTPS port; personal (the default, "
        "or the `shared` setting): one JupyterLab on this computer without a login.",
    ),
):
    """Build what is missing, start everything and print how to connect; Ctrl-C stops it."""
    from starbox import jupyter, processes
    from starbox.jupyter.hub import launch as hub_launch

    s = _settings()
    console.print(f"[bold]Starbox[/] in {s.home}")
    prepared = appliance.prepare(s, build_catalogs=catalogs, log=console.print)
    where = f"embedded PostgreSQL on {s.pg_host}:{s.pg_port}" if s.embedded else "the server in STARBOX_DATABASE_URL"
    console.print(f"database ready in {prepared.seconds:.1f} s: {where}")
    for line in appliance.connection_help(s):
        console.print(line, highlight=False)
    if not foreground:
        return
    if shared is not None and shared != s.shared:
        s = dataclasses.replace(s, shared=shared)
    if s.shared:
        children = [processes.service(s), *hub_launch.shared_children(s)]
    else:
        children = [processes.service(s), *jupyter.children(s)]

    def stop():
        if s.shared:  # labs outlive a hub restart (cleanup_servers=False), not `starbox down`
            from starbox.jupyter.hub import admin as hub_admin

            stopped = hub_admin.stop_all(s)
            if stopped:
                console.print(f"stopped {stopped} labs")
        for child in reversed(children):
            child.stop()
        if s.embedded:
            from starbox.cluster import Cluster

            Cluster(s).stop()
        console.print("stopped.")

    try:
        for child in children:
            child.start(s)
    except BaseException:
        stop()
        raise
    for line in appliance.service_help(s):
        console.print(line, highlight=False)
    if s.shared:
        lines = hub_launch.help_lines(s)
    else:
        lines = jupyter.help_lines(s)
    for line in lines:
        console.print(line, highlight=False)
    appliance.wait_in_foreground(s, stop, children=children, log=console.print)


@app.command()
def down():
    """Stop the appliance."""
    console.print(appliance.down(_settings()))


@app.command()
def status():
    """What runs, on which port, since when; and the catalogs with their row counts."""
    s = _settings()
    table = Table(title="Starbox", show_header=True)
    for col in ("part", "state", "where", "since"):
        table.add_column(col)
    cs = appliance.cluster_status(s)
    if cs is None:
        table.add_row("PostgreSQL", "external", database.public_dsn(s), "")
    elif cs.running:
        table.add_row(
            "PostgreSQL",
            "[green]running[/]",
            f"{s.pg_host}:{cs.port} (pid {cs.pid})",
            cs.started.strftime("%Y-%m-%d %H:%M:%S UTC"),
        )
    else:
        table.add_row("PostgreSQL", "[red]stopped[/]", str(s.pgdata), "")
    for name, where, since in appliance.children_status(s):
        state = "[green]running[/]" if since else "[red]stopped[/]"
        table.add_row(name, state, where, since.strftime("%Y-%m-%d %H:%M:%S UTC") if since else "")
    console.print(table)
    note = appliance.lab_limits_note(s)
    if note:
        console.print(note, highlight=False)
    if cs is not None and not cs.running:
        return
    rows = appliance.catalog_rows(s)
    cats = Table(title="Catalogs")
    for col, justify in (("table", "left"), ("rows", "right"), ("size", "right")):
        cats.add_column(col, justify=justify)
    for name, nrows, size in rows:
        cats.add_row(name, f"{nrows:,}", size)
    console.print(cats)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(ctx: typer.Context):
    """Open psql on the Starbox database (extra arguments go to psql)."""
    exe = shutil.which("psql")
    if not exe:
        raise StarboxError("psql is not installed: apt-get install postgresql-client-15")
    conninfo = database.admin_conninfo(_settings())
    sys.stdout.flush()
    os.execv(exe, [exe, conninfo, *ctx.args])


@catalog_app.command("list")
def catalog_list():
    """The catalog tables with rows and sizes."""
    rows = appliance.catalog_rows(_settings())
    table = Table()
    for col, justify in (("table", "left"), ("rows", "right"), ("size", "right")):
        table.add_column(col, justify=justify)
    for name, nrows, size in rows:
        table.add_row(name, f"{nrows:,}", size)
    console.print(table)


@catalog_app.command("info")
def catalog_info(table: str = typer.Argument(..., help="schema.table")):
    """A table's description, size, indexes and columns with units and UCDs."""
    from starbox.catalogs import registry
    from starbox.catalogs.manifest import split_table

    schema, name = split_table(table)
    with database.connect_admin(_settings()) as conn:
        info = registry.describe(conn, schema, name)
    if info is None:
        raise StarboxError(f"{table} is not a catalog table (see `starbox catalog list`)")
    console.print(
        f"[bold]{table}[/]: {info.nrows:,} rows, {info.ncols} columns, {info.nindex} indexes, {info.total_size}"
    )
    console.print(info.description or "", highlight=False)
    for d in info.indexes:
        console.print(f"  index: {d}", highlight=False)
    t = Table()
    for c in ("column", "type", "unit", "ucd", "description"):
        t.add_column(c)
    for row in info.columns:
        t.add_row(*[v or "" for v in row])
    console.print(t)


@catalog_app.command("load")
def catalog_load(
    file: Path = typer.Argument(..., help="CSV, TSV, Parquet, FITS or VOTable file"),
    table: str = typer.Option(..., "--table", help="schema.table to create"),
    ra: Optional[str] = typer.Option(None, help="RA column (degrees); found by name when omitted"),
    dec: Optional[str] = typer.Option(None, help="Dec column (degrees); found by name when omitted"),
    manifest: Optional[Path] = typer.Option(None, help="YAML manifest with types, units, UCDs, descriptions"),
    replace: bool = typer.Option(False, help="Replace the table if it exists"),
    pgsphere: Optional[bool] = typer.Option(None, "--pgsphere/--no-pgsphere", help="Also add a pgsphere index"),
):
    """Load a file into a new catalog table: COPY, q3c index, cluster, ANALYZE, TAP_SCHEMA."""
    from starbox.catalogs import loader
    from starbox.catalogs.manifest import read

    m = read(manifest) if manifest else None
    with database.connect_admin(_settings()) as conn:
        result = loader.load(conn, file, table, ra=ra, dec=dec, manifest=m, replace=replace, pgsphere=pgsphere)
    spatial = "with q3c index" if result.spatial else "no position columns, so no spatial index"
    console.print(f"loaded {result.rows:,} rows into {result.table} in {result.seconds:.1f} s ({spatial})")


@catalog_app.command("drop")
def catalog_drop(
    table: str = typer.Argument(..., help="schema.table"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask"),
):
    """Drop a catalog table and its TAP_SCHEMA and tbl_stat entries."""
    from starbox.catalogs import loader

    if not yes and not typer.confirm(f"drop {table}?"):
        raise typer.Exit(1)
    with database.connect_admin(_settings()) as conn:
        loader.drop(conn, table)
    console.print(f"dropped {table}")


@catalog_app.command("build")
def catalog_build(
    tables: Optional[List[str]] = typer.Argument(None, help="Only these tables or schemas"),
    force: bool = typer.Option(False, help="Rebuild even the tables that exist"),
):
    """Build the sample catalogs from their registry packages (only the missing ones by default)."""
    from starbox import catalogs

    s = _settings()
    with database.connect_admin(s) as conn:
        built = catalogs.build(conn, s, only=tables or None, force=force, log=console.print)
    if not built:
        console.print("all sample catalogs are already built (use --force to rebuild)")


@app.command("backup")
def backup_cmd(dest: Path = typer.Argument(..., help="Folder to put the backup in (best on another disk)")):
    """Back up everything: database (catalogs, MyDB tables, accounts), roles, keys, files, lessons."""
    from starbox import backup

    folder = backup.create(_settings(), dest, log=console.print)
    console.print(f"backup: {folder}\nrestore it into an empty home with: starbox restore {folder}")


@app.command("restore")
def restore_cmd(folder: Path = typer.Argument(..., help="A folder made by `starbox backup`")):
    """Rebuild a backed-up Starbox in an empty STARBOX_HOME (then `starbox up` serves it)."""
    from starbox import backup

    backup.restore(_settings(), folder, log=console.print)


replica_app = typer.Typer(help="Hot standby: allow, follow, status, promote.", no_args_is_help=True)
app.add_typer(replica_app, name="replica")


@replica_app.command("allow")
def replica_allow():
    """On the primary: let standbys connect (a replication role and its pg_hba lines)."""
    from starbox import replica

    replica.prepare_primary(_settings())
    console.print(f"standbys may connect as {replica.ROLE}; give them a copy of {_settings().secrets_dir}")


@replica_app.command("follow")
def replica_follow(
    secrets: Path = typer.Option(..., help="A copy of the primary's secrets folder"),
    primary_port: int = typer.Option(5433, help="The primary's PostgreSQL port"),
    primary_host: str = typer.Option("127.0.0.1", help="The primary's host"),
):
    """In an empty home: become a hot standby of the primary, and start."""
    from starbox import replica

    replica.follow(_settings(), primary_host, primary_port, secrets, log=console.print)


@replica_app.command("status")
def replica_status():
    """Primary: its standbys and their lag. Standby: its primary and how old its last replay is."""
    from starbox import replica

    st = replica.status(_settings())
    if st["role"] == "standby":
        console.print(
            f"standby of {st['primary'] or '?'}: receiver {st['receiver']}, "
            f"last replayed change {st['replay_age'] or 'none yet'} ago"
        )
        return
    console.print(f"primary with {len(st['standbys'])} standby(s)")
    for sb in st["standbys"]:
        console.print(f"  {sb['client']}: {sb['state']}, replay lag {sb['replay_lag'] or '0'}")


@replica_app.command("promote")
def replica_promote():
    """On the standby: stop following and take writes (then `starbox up` serves from here)."""
    from starbox import replica

    replica.promote(_settings())
    console.print("promoted: this is the primary now; `starbox up` serves it")


hub_app = typer.Typer(help="The shared mode's hub: its CA, users and their labs.", no_args_is_help=True)
app.add_typer(hub_app, name="hub")


@hub_app.command("ca")
def hub_ca():
    """Print the box's CA certificate (PEM), for students' browsers to trust."""
    from starbox.jupyter.hub import tls

    sys.stdout.write(tls.ca_pem(_settings()))


@hub_app.command("users")
def hub_users():
    """The hub's users: their class, whether their lab runs, and their last activity."""
    from starbox.jupyter.hub import admin

    table = Table(title="Hub users")
    for col in ("user", "class", "lab", "last activity"):
        table.add_column(col)
    for u in admin.users(_settings()):
        server = (u.get("servers") or {}).get("")
        state = "starting" if server and not server.get("ready") else ("running" if server else "")
        table.add_row(u["name"], ", ".join(u.get("groups", [])), state, u.get("last_activity") or "")
    console.print(table)


@hub_app.command("stop")
def hub_stop(name: str = typer.Argument(..., help="The account whose lab stops.")):
    """Stop one user's lab (their files stay)."""
    from starbox.jupyter.hub import admin

    console.print(f"{name}: {admin.stop(_settings(), name)}")


kernels_app = typer.Typer(help="The kernels the hub's labs offer: list, add, remove.", no_args_is_help=True)
app.add_typer(kernels_app, name="kernels")


@kernels_app.command("list")
def kernels_list():
    """The kernels a lab may start (its spawn form offers these and no others)."""
    from starbox.jupyter.hub import kernels

    table = Table(title="Kernels")
    for col in ("name", "shown as", "python"):
        table.add_column(col)
    for k in kernels.listing(_settings()):
        table.add_row(k.name, k.display_name, k.python)
    console.print(table)


@kernels_app.command("add")
def kernels_add(
    name: str = typer.Argument(..., help="Short name: lower-case letters, digits, '.', '_', '-'."),
    python: Path = typer.Argument(..., help="The environment's python; it needs ipykernel, readable to everyone."),
    display_name: Optional[str] = typer.Option(None, help="What the lab's launcher shows (default: the name)."),
):
    """Register an environment as a kernel of every lab (labs started from now on see it)."""
    from starbox.jupyter.hub import kernels

    k = kernels.add(_settings(), name, python, display_name)
    console.print(f"kernel {k.name} ({k.display_name}): {k.python}")


@kernels_app.command("remove")
def kernels_remove(name: str):
    """Unregister a kernel (its environment stays where it is)."""
    from starbox.jupyter.hub import kernels

    kernels.remove(_settings(), name)
    console.print(f"kernel {name} removed")


apps_app = typer.Typer(
    help="The Voilà apps' pre-heated kernels: plan them for a class, see them.", no_args_is_help=True
)
app.add_typer(apps_app, name="apps")


@apps_app.command("prewarm")
def apps_prewarm(
    name: str = typer.Argument(..., metavar="APP", help="The app, e.g. hr_diagram (see `starbox apps pools`)."),
    students: int = typer.Option(..., help="How many students will open it (0 cancels the plan)."),
    at: Optional[str] = typer.Option(
        None, help="When the class starts: HH:MM today, or YYYY-MM-DDTHH:MM (default: now)."
    ),
    hours: float = typer.Option(2.0, help="How long the class lasts; then the pool is back to one kernel."),
):
    """Have one pre-heated kernel ready for each student of a class (filled from 15 minutes before)."""
    import time

    from starbox.jupyter import pools

    s = _settings()
    plan = pools.plan(s, name, students, pools.parse_start(at), hours)
    if plan is None:
        console.print(f"{name}: plan cancelled; the pool is back to its default size")
        return
    start = time.strftime("%H:%M", time.localtime(plan.start))
    until = time.strftime("%H:%M", time.localtime(plan.until))
    console.print(
        f"{plan.app}: {plan.students} pre-heated kernels for a class from {start} to {until}; "
        f"the pool fills from 15 minutes before (see `starbox apps pools`)",
        highlight=False,
    )


@apps_app.command("pools")
def apps_pools():
    """Each app's pre-heated kernels: how many are warm, what the plan asks, pages served."""
    from starbox import jupyter

    try:
        status = jupyter.pool_status(_settings())
    except Exception:
        raise StarboxError("Error: Voilà is not answering; is Starbox up (`starbox status`)?") from None
    table = Table(title=f"Voilà's pre-heated kernels ({status.get('kernels', 0)} kernels running)")
    for col in ("app", "warm", "in the pool", "wanted now", "served by the plan", "plan"):
        table.add_column(col)
    for notebook, p in sorted(status.get("pools", {}).items()):
        plan = p.get("plan")
        text = f"{plan['students']} students" if plan else ""
        table.add_row(
            notebook.removesuffix(".ipynb"), str(p["warm"]), str(p["size"]), str(p["target"]), str(p["served"]), text
        )
    console.print(table)


@hub_app.command("prewarm")
def hub_prewarm(class_name: str = typer.Argument(..., metavar="CLASS", help="The class whose labs start now.")):
    """Start every lab of a class before it begins (they stop again after the class's idle time)."""
    from starbox.jupyter.hub import admin

    outcome = admin.prewarm(_settings(), class_name, log=lambda line: console.print(line, highlight=False))
    ready = sum(1 for v in outcome.values() if v == "ready")
    console.print(f"{ready} of {len(outcome)} labs of {class_name} are ready")
    if ready < len(outcome):
        raise typer.Exit(1)


accounts_app = typer.Typer(help="User accounts: add, list, passwd, disable, remove.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")


def _password(password: Optional[str]) -> str:
    return password if password is not None else typer.prompt("password", hide_input=True, confirmation_prompt=True)


@accounts_app.command("add")
def accounts_add(username: str, password: Optional[str] = typer.Option(None, help="Asked for when omitted")):
    """Create an account with its MyDB schema and storage."""
    from starbox import accounts, storage_home

    s = _settings()
    with database.connect_admin(s) as conn:
        user = accounts.add(conn, s, username, _password(password))
    storage_home.create(s, user.name)
    console.print(f"created {user.name} (uid {user.uid}); MyDB schema {user.schema}")


@accounts_app.command("list")
def accounts_list():
    """Accounts with their state and open sessions."""
    from starbox import accounts

    with database.connect_admin(_settings()) as conn:
        rows = accounts.list_accounts(conn)
    table = Table()
    for c in ("user", "uid", "state", "created", "ends", "sessions"):
        table.add_column(c)
    now = dt.datetime.now(dt.timezone.utc)
    for name, uid, disabled, created, sessions, expires in rows:
        state = "disabled" if disabled else "ended" if expires and expires <= now else "active"
        table.add_row(
            name,
            str(uid),
            state,
            f"{created:%Y-%m-%d %H:%M}",
            f"{expires:%Y-%m-%d %H:%M}" if expires else "",
            str(sessions),
        )
    console.print(table)


@accounts_app.command("passwd")
def accounts_passwd(username: str, password: Optional[str] = typer.Option(None, help="Asked for when omitted")):
    """Set a new password (and log the user out everywhere)."""
    from starbox import accounts

    with database.connect_admin(_settings()) as conn:
        accounts.set_password(conn, username, _password(password))
    console.print(f"password of {username} changed; open sessions were logged out")


@accounts_app.command("disable")
def accounts_disable(username: str, enable: bool = typer.Option(False, "--enable", help="Enable it again")):
    """Disable an account (its data stays), or enable it again."""
    from starbox import accounts

    with database.connect_admin(_settings()) as conn:
        accounts.set_disabled(conn, username, not enable)
    console.print(f"{username} {'enabled' if enable else 'disabled'}")


@accounts_app.command("remove")
def accounts_remove(username: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask")):
    """Delete an account with its MyDB tables and its files."""
    from starbox import account_removal

    if not yes and not typer.confirm(f"delete {username} with all their tables and files?"):
        raise typer.Exit(1)
    s = _settings()
    with database.connect_admin(s) as conn:
        account_removal.remove(conn, s, [username])
    console.print(f"removed {username}")


class_app = typer.Typer(help="Temporary class accounts: add, list, extend, remove, purge.", no_args_is_help=True)
accounts_app.add_typer(class_app, name="class")


@class_app.command("add")
def class_add(
    name: str = typer.Argument(..., help="The class, e.g. astro101: its accounts are astro101_01, ..."),
    students: int = typer.Option(..., "--students", "-n", help="How many accounts"),
    days: float = typer.Option(14, help="How long the accounts work, in days"),
    out: Optional[Path] = typer.Option(
        None, help="CSV of user names and passwords (default: ./<name>-accounts.csv, readable by you only)"
    ),
):
    """Make a class's accounts, each with its own password, all ending at the same time."""
    from starbox import classes

    s = _settings()
    out = out or Path(f"{name}-accounts.csv")
    if out.exists():
        raise StarboxError(f"{out} exists; give another --out (it would hold the new passwords)")
    with database.connect_admin(s) as conn:
        expires, issued = classes.create(conn, s, name, students, days)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["username", "password", "expires"])
        writer.writerows([u, p, expires.isoformat()] for u, p in issued)
    table = Table(title=f"class {name}: {len(issued)} accounts, until {expires:%Y-%m-%d %H:%M %Z}")
    table.add_column("user")
    table.add_column("password")
    for username, password in issued:
        table.add_row(username, password)
    console.print(table)
    console.print(f"the list is in {out.resolve()} (mode 0600); hand each student one line")


@class_app.command("list")
def class_list():
    """Classes, their size, end and open sessions."""
    from starbox import classes

    with database.connect_admin(_settings()) as conn:
        rows = classes.list_classes(conn)
    if not rows:
        console.print("no classes (make one with `starbox accounts class add NAME --students N`)")
        return
    table = Table()
    for c in ("class", "accounts", "ends", "state", "sessions"):
        table.add_column(c)
    for c in rows:
        table.add_row(
            c.name, str(c.accounts), f"{c.expires:%Y-%m-%d %H:%M %Z}", "ended" if c.ended else "active", str(c.sessions)
        )
    console.print(table)


@class_app.command("extend")
def class_extend(name: str, days: float = typer.Option(..., help="The new end, in days from now (0 ends it now)")):
    """Move a class's end: later, or now (0), which also logs its students out."""
    from starbox import classes

    with database.connect_admin(_settings()) as conn:
        expires = classes.set_end(conn, name, days)
    console.print(f"class {name} now ends {expires:%Y-%m-%d %H:%M %Z}")


@class_app.command("remove")
def class_remove(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask")):
    """Delete a class's accounts with their MyDB tables and files."""
    from starbox import classes

    s = _settings()
    if not yes and not typer.confirm(f"delete every account of class {name} with their tables and files?"):
        raise typer.Exit(1)
    with database.connect_admin(s) as conn:
        removed = classes.remove(conn, s, name)
    console.print(f"removed class {name}: {len(removed)} accounts")


@class_app.command("purge")
def class_purge(yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask")):
    """Remove every class that has ended, with its accounts' tables and files."""
    from starbox import classes

    s = _settings()
    with database.connect_admin(s) as conn:
        ended = [c.name for c in classes.list_classes(conn) if c.ended]
        if not ended:
            console.print("no class has ended")
            return
        if not yes and not typer.confirm(f"delete the ended classes {', '.join(ended)} with their data?"):
            raise typer.Exit(1)
        purged = classes.purge_ended(conn, s)
    console.print(f"removed the ended classes: {', '.join(purged)}")


# Commands that live beside their part of the package: (module, attribute, name, kind).
NOTEBOOK_COMMANDS = [
    ("starbox.notebooks.cli", "nbtest", "nbtest", "command"),
    ("starbox.notebooks.publish_cli", "notebooks_app", "notebooks", "group"),
    ("starbox.notebooks.publish_cli", "getlatest", "getlatest", "command"),
    ("starbox.notebooks.publish_cli", "nbcheck", "nbcheck", "command"),
]


def _register_notebook_commands() -> None:
    """The notebook commands, defined in starbox.notebooks (next to what they drive)."""
    import importlib

    for module_name, attr, name, kind in NOTEBOOK_COMMANDS:
        module = importlib.import_module(module_name)
        target = getattr(module, attr)
        if kind == "group":
            app.add_typer(target, name=name)
        else:
            app.command(name)(target)


_register_notebook_commands()


def main() -> None:
    """Entry point: every StarboxError becomes one red line and exit status 1, never a traceback."""
    # Typer vendors its own click; its usage errors must be shown the way standalone mode would.
    import psycopg
    from typer import Abort
    from typer._click.exceptions import ClickException

    try:
        rc = app(standalone_mode=False)
    except StarboxError as exc:
        err.print(f"[red]starbox: {exc}[/]", highlight=False)
        sys.exit(1)
    except psycopg.Error as exc:  # e.g. a database that `starbox up` has not brought up to date
        first = db_errors.primary(exc)
        err.print(
            f"[red]starbox: the database refused: {first} (has `starbox up` run since the update?)[/]", highlight=False
        )
        sys.exit(1)
    except ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (Abort, KeyboardInterrupt):
        rc = 130
    if rc == 130:
        err.print("interrupted")
    sys.exit(rc if isinstance(rc, int) else 0)
