"""The embedded cluster: init, idempotence, root, refusals, and the external-server mode."""

from __future__ import annotations

import os
import pwd
import socket
import time
from pathlib import Path

import psycopg
import pytest

from starbox import appliance, database
from starbox.cluster import Cluster, control
from starbox.errors import StarboxError

from conftest import docker_engine, make_settings, run_cli


@pytest.mark.api
def test_first_prepare_made_everything(first_prepare):
    s, prepared = first_prepare
    assert prepared.new_cluster and prepared.started
    assert [m for m in prepared.migrations] == [p.name for p in database.migration_files(s.db_dir)]
    assert {b.table for b in prepared.built} >= {"hipparcos.main", "gaia_dr3.gaia_source_bright", "openngc.objects"}


@pytest.mark.api
def test_second_prepare_is_idempotent_and_quick(starbox, admin):
    before = admin.execute("SELECT name, applied_at FROM starbox_meta.migrations ORDER BY name").fetchall()
    again = appliance.prepare(starbox, progress=False, log=lambda *_: None)
    assert not again.new_cluster and not again.started
    assert again.migrations == [] and again.built == []
    after = admin.execute("SELECT name, applied_at FROM starbox_meta.migrations ORDER BY name").fetchall()
    assert before == after
    assert again.seconds < 10, f"a warm prepare took {again.seconds:.1f} s"


@pytest.mark.api
def test_extensions_and_roles(admin):
    exts = {r[0] for r in admin.execute("SELECT extname FROM pg_extension")}
    assert {"q3c", "pg_sphere"} <= exts
    roles = {r[0]: r[1:] for r in admin.execute(
        "SELECT rolname, rolcanlogin, rolinherit FROM pg_roles WHERE rolname LIKE 'starbox%'")}
    assert roles["starbox_owner"] == (False, True)
    assert roles["starbox_public"][0] is False
    assert roles["starbox_service"] == (True, False)  # LOGIN NOINHERIT: switches with SET ROLE only


@pytest.mark.api
@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when the tests run as root")
def test_runs_as_unprivileged_user_when_root(starbox):
    cluster = Cluster(starbox)
    owner = pwd.getpwuid(starbox.pgdata.stat().st_uid).pw_name
    assert owner == starbox.system_user
    pid = cluster.status().pid
    uid = int(next(l for l in Path(f"/proc/{pid}/status").read_text().splitlines() if l.startswith("Uid:")).split()[1])
    assert uid == pwd.getpwnam(starbox.system_user).pw_uid != 0


@pytest.mark.api
def test_status_reports_port_and_start(starbox):
    st = Cluster(starbox).status()
    assert st.running and st.port == starbox.pg_port
    assert abs(time.time() - st.started.timestamp()) < 3600


@pytest.mark.system
def test_taken_port_is_refused(tmp_path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        s = make_settings(tmp_path / "home", pg_port=port)
        cluster = Cluster(s)
        cluster.init()
        with pytest.raises(StarboxError, match=f"port {port} on 127.0.0.1 is taken by another program"):
            cluster.start()
        # and through the CLI: one line, no traceback
        proc = run_cli(s, "up", "--no-catalogs", "--no-foreground")
        assert proc.returncode == 1
        assert "is taken by another program" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.system
def test_other_postgres_version_is_refused(tmp_path):
    s = make_settings(tmp_path / "home")
    s.pgdata.mkdir(parents=True)
    (s.pgdata / "PG_VERSION").write_text("14\n")
    with pytest.raises(StarboxError, match="made by PostgreSQL 14, this is PostgreSQL 15"):
        Cluster(s).init()


@pytest.mark.system
def test_other_owner_is_refused(tmp_path):
    s = make_settings(tmp_path / "home")
    s.pgdata.mkdir(parents=True)
    (s.pgdata / "PG_VERSION").write_text("15\n")
    nobody = pwd.getpwnam("nobody")
    if os.geteuid() != 0:
        pytest.skip("changing a folder's owner needs root")
    os.chown(s.pgdata, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(StarboxError, match="belongs to nobody"):
        Cluster(s).init()


@pytest.mark.system
def test_missing_extension_package_is_named(monkeypatch, tmp_path):
    # Point the check at an extension folder that has q3c but not pgsphere, as on a machine
    # where only one package was installed.
    share = tmp_path / "share"
    (share / "extension").mkdir(parents=True)
    (share / "extension" / "q3c.control").write_text("")
    real = control.pg_install()
    monkeypatch.setattr(control, "pg_install", lambda: control.PgInstall(real.major, real.bindir, share))
    with pytest.raises(StarboxError, match="apt-get install postgresql-15-pgsphere"):
        control.check_extensions_installed()


@pytest.mark.api
def test_external_server_mode_builds_database_without_cluster(starbox, admin, tmp_path):
    """STARBOX_DATABASE_URL: `up` builds the same database on an existing server, starts nothing."""
    admin.execute("DROP DATABASE IF EXISTS site_db")
    admin.execute("CREATE DATABASE site_db")
    password = (starbox.secrets_dir / "postgres.password").read_text().strip()
    url = f"postgresql://postgres:{password}@127.0.0.1:{starbox.pg_port}/site_db"
    ext = make_settings(tmp_path / "site-home", database_url=url)
    # Roles are global to a PostgreSQL server: a second Starbox home on the same server would set
    # the service's passwords anew and lock the session's service out, so share its secrets.
    import shutil
    shutil.copytree(starbox.secrets_dir, ext.secrets_dir)
    prepared = appliance.prepare(ext, build_catalogs=False, progress=False, log=lambda *_: None)
    assert not prepared.new_cluster and not prepared.started
    assert not ext.pgdata.exists()
    with psycopg.connect(url) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM starbox_meta.migrations ORDER BY name")]
        assert names == [p.name for p in database.migration_files(ext.db_dir)]
        assert conn.execute("SELECT count(*) FROM tap_schema.tables WHERE schema_name = 'tap_schema'").fetchone()[0] == 5
    assert "password" not in database.public_dsn(ext) and password not in database.public_dsn(ext)


@pytest.mark.system
def test_cli_status_and_down_up_cycle(tmp_path):
    s = make_settings(tmp_path / "home", sample_catalogs="openngc")
    proc = run_cli(s, "up", "--no-foreground")
    assert proc.returncode == 0, proc.stderr
    assert "starbox psql" in proc.stdout and f":{s.pg_port}/starbox" in proc.stdout
    status = run_cli(s, "status")
    assert "running" in status.stdout and f"127.0.0.1:{s.pg_port}" in status.stdout
    assert "openngc.objects" in status.stdout and "14,033" in status.stdout
    psql = run_cli(s, "psql", "-tAc", "SELECT count(*) FROM openngc.objects")
    assert psql.stdout.strip() == "14033"
    assert "stopped PostgreSQL" in run_cli(s, "down").stdout
    assert "stopped" in run_cli(s, "status").stdout


@pytest.mark.system
def test_foreground_up_stops_cleanly_on_signal(tmp_path):
    import signal
    import subprocess
    import sys

    s = make_settings(tmp_path / "home", sample_catalogs="openngc")
    from conftest import settings_env
    exe = Path(sys.executable).with_name("starbox")
    proc = subprocess.Popen([str(exe), "up"], env=settings_env(s), stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "Ctrl-C" in line:
                break
        assert Cluster(s).status().running
        import httpx
        assert httpx.get(f"{s.service_url}/query/").text.lower().startswith("hello world")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert not Cluster(s).status().running
        assert not control.port_in_use(s.service_host, s.service_port)
    finally:
        proc.kill()
        Cluster(s).stop()


@pytest.mark.system
@docker_engine
def test_testcontainers_path():
    pytest.importorskip("testcontainers", reason="testcontainers is not installed")
