"""`starbox replica`: a hot standby follows a primary by streaming replication, refuses writes,
and after `promote` is a primary that serves the same accounts (checked through the toolkit's
in-process mode)."""

from __future__ import annotations


import pytest

from conftest import make_settings, run_cli, until
from starbox import database, inprocess
from starbox.client import http as _http
from starbox import authClient as ac
from starbox import queryClient as qc
from starbox.cluster.control import Cluster

pytestmark = pytest.mark.system


@pytest.fixture
def pair(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the toolkit's logins stay here
    primary = make_settings(tmp_path / "primary", sample_catalogs="openngc")
    standby = make_settings(tmp_path / "standby", sample_catalogs="openngc")
    up = run_cli(primary, "up", "--no-foreground")
    assert up.returncode == 0, up.stderr
    yield primary, standby
    _http._session.update(user=None, token=None)
    for s in (standby, primary):
        Cluster(s).stop()


def test_standby_follows_refuses_writes_and_takes_over(pair):
    primary, standby = pair
    refused = run_cli(standby, "replica", "follow", "--secrets", str(primary.secrets_dir),
                      "--primary-port", str(primary.pg_port))
    assert refused.returncode == 1 and "max_wal_senders" in refused.stderr  # not allowed yet
    assert not (standby.pgdata / "PG_VERSION").exists()  # the failed copy left nothing

    assert run_cli(primary, "replica", "allow").returncode == 0
    follow = run_cli(standby, "replica", "follow", "--secrets", str(primary.secrets_dir),
                     "--primary-port", str(primary.pg_port))
    assert follow.returncode == 0, follow.stderr
    assert "streaming" in run_cli(primary, "replica", "status").stdout
    assert "receiver streaming" in run_cli(standby, "replica", "status").stdout

    # a change on the primary shows up on the standby
    assert run_cli(primary, "accounts", "add", "rpuser", "--password", "rp-password-1").returncode == 0

    def replicated():
        with database.connect_admin(standby) as conn:
            return conn.execute("SELECT count(*) FROM starbox.accounts WHERE username = 'rpuser'").fetchone()[0] == 1

    assert until(replicated)
    with database.connect_admin(standby) as conn:
        assert conn.execute("SELECT count(*) FROM openngc.objects").fetchone()[0] == 14033
    write = run_cli(standby, "psql", "-c", "CREATE TABLE public.x (i int)")
    assert "read-only transaction" in write.stderr
    up = run_cli(standby, "up", "--no-foreground")
    assert up.returncode == 1 and "hot standby" in up.stderr and "Traceback" not in up.stderr

    # the primary's machine dies; the standby takes over with the same accounts
    Cluster(primary).stop()
    promoted = run_cli(standby, "replica", "promote")
    assert promoted.returncode == 0, promoted.stderr
    assert run_cli(standby, "up", "--no-foreground").returncode == 0
    assert run_cli(standby, "replica", "promote").returncode == 1  # a primary has nothing to promote
    inprocess.start(standby)
    try:
        token = ac.login("rpuser", "rp-password-1")
        assert qc.query(token, sql="SELECT 1 AS one", out="mydb://after") == "OK"
        assert qc.query(token, sql="SELECT count(*) AS n FROM mydb://after") == "n\n1\n"
    finally:
        inprocess.stop()
