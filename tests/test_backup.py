"""`starbox backup` and `starbox restore`: a small Starbox is backed up, restored into an empty
home on other ports, and everything a user had is there: their login, tokens, MyDB tables and
files, and the catalogs. Checked through the toolkit's in-process mode (no service needed)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import make_settings, run_cli
from starbox.client import http as _http
from starbox import authClient as ac
from starbox import inprocess
from starbox import queryClient as qc
from starbox import storeClient as sc
from starbox.cluster.control import Cluster

pytestmark = pytest.mark.system

USER, PASSWORD = "bkuser", "bk-password-1"


@pytest.fixture(scope="module", autouse=True)
def private_toolkit(tmp_path_factory):
    """The logins below stay in this module: a private ~/.datalab, and no login left in memory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(tmp_path_factory.mktemp("bk-home")))
        yield
        _http._session.update(user=None, token=None)


@pytest.fixture(scope="module")
def original(tmp_path_factory):
    s = make_settings(tmp_path_factory.mktemp("bk") / "a", sample_catalogs="openngc")
    up = run_cli(s, "up", "--no-foreground")
    assert up.returncode == 0, up.stderr
    assert run_cli(s, "accounts", "add", USER, "--password", PASSWORD).returncode == 0
    inprocess.start(s)
    try:
        token = ac.login(USER, PASSWORD)
        assert qc.query(token, sql="SELECT name, ra FROM openngc.objects ORDER BY name LIMIT 3",
                        out="mydb://mine") == "OK"
        assert sc.saveAs(token, "hello backup", "vos://notes/hello.txt") == ["OK"]
        assert sc.ln(token, "vos://public/hello.txt", "vos://notes/hello.txt") == "OK"
    finally:
        inprocess.stop()
    yield s, token
    Cluster(s).stop()


def test_backup_and_restore(original, tmp_path):
    s, token = original
    inside = run_cli(s, "backup", str(s.home / "storage"))
    assert inside.returncode == 1 and "inside STARBOX_HOME" in inside.stderr
    r = run_cli(s, "backup", str(tmp_path))
    assert r.returncode == 0, r.stderr
    (folder,) = tmp_path.glob("starbox-backup-*")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["accounts"] == [USER] and manifest["storage_files"] >= 1
    assert os.stat(folder / "secrets").st_mode & 0o777 == 0o700
    assert os.stat(folder / "roles.sql").st_mode & 0o777 == 0o600
    assert "CREATE ROLE starbox_u_bkuser;" in (folder / "roles.sql").read_text()
    assert not list(tmp_path.glob(".*.part"))

    # the machine dies: the backup is all there is
    run_cli(s, "down")
    target = make_settings(tmp_path / "restored", sample_catalogs="openngc")
    r = run_cli(target, "restore", str(folder))
    assert r.returncode == 0, r.stderr
    assert "restored 1 accounts" in r.stdout
    inprocess.start(target)
    try:
        assert ac.isValidToken(token)  # sessions survive: the tokens table came along
        fresh = ac.login(USER, PASSWORD)
        assert qc.query(fresh, sql="SELECT count(*) AS n FROM mydb://mine") == "n\n3\n"
        assert sc.get(fresh, "vos://notes/hello.txt", "") == "hello backup"
        assert sc.get(fresh, "vos://public/hello.txt", "") == "hello backup"  # the link too
        assert qc.query(sql="SELECT count(*) AS n FROM openngc.objects") == "n\n14033\n"
        assert "openngc.objects" in qc.query(sql="SELECT table_name FROM tap_schema.tables")
        # what was refused before is refused after: the roles came back with their rights
        with pytest.raises(qc.queryClientError, match="permission denied"):
            qc.query(fresh, sql="DELETE FROM openngc.objects")
    finally:
        inprocess.stop()

    again = run_cli(target, "restore", str(folder))
    assert again.returncode == 1 and "already holds a Starbox" in again.stderr
    Cluster(target).stop()


def test_a_broken_backup_is_refused(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "manifest.json").write_text(json.dumps({"format": 1, "accounts": []}))
    target = make_settings(tmp_path / "nowhere")
    r = run_cli(target, "restore", str(broken))
    assert r.returncode == 1 and "incomplete: database.dump is missing" in r.stderr
    r = run_cli(target, "restore", str(tmp_path / "missing"))
    assert r.returncode == 1 and "is not a Starbox backup" in r.stderr
    assert not (Path(target.home) / "pgdata").exists()
    shutil.rmtree(broken)
