"""The real astro-datalab 2.24.0 client, unchanged but for its service URLs, against Starbox.

The client lives in its own environment (.venv-datalab, made by `appliance/install.sh --test`),
since it needs Python < 3.12 and old pins; tests/dlclient/ holds the scenarios it runs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.system

ROOT = Path(__file__).resolve().parents[1]
DL_PYTHON = ROOT / ".venv-datalab" / "bin" / "python"
TOKEN = re.compile(r"([^\/\s]+)\.(\d+)\.(\d+)\.((?:\$1\$\S{22,})|(?:\S+_access))")
PASSWORD = "dl-client-pw"


@pytest.fixture(scope="module")
def dl_users(service):
    service.add_user("dluser", PASSWORD)
    service.add_user("dlother", PASSWORD)
    return "dluser", "dlother"


def drive(service, area: str, tmp_path: Path, **extra) -> dict:
    assert DL_PYTHON.exists(), "the astro-datalab client is missing: run appliance/install.sh --test"
    args = {"base": service.url, "user": "dluser", "other": "dlother", "password": PASSWORD,
            "workdir": str(tmp_path), **extra}
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": str(ROOT / "tests" / "dlclient")}
    proc = subprocess.run([str(DL_PYTHON), str(ROOT / "tests" / "dlclient" / "run.py"), area, json.dumps(args)],
                          capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_auth(service, dl_users, tmp_path):
    o = drive(service, "auth", tmp_path)
    assert o["alive"] == [True, True, True]
    assert "Invalid password" in o["bad_login"]
    assert TOKEN.fullmatch(o["token"]) and o["token"].startswith("dluser.")
    assert o["whoami"] == "dluser"
    assert o["valid_token"] is True
    assert o["valid_user"] == [True, False]
    assert o["valid_password"] == [True, False]
    assert o["user_logged_in"] is True and o["token_logged_in"] is True and o["has_access"] is True
    assert o["anon_login"] == "anonymous.0.0.anon_access"
    assert o["logout"] == "OK"
    assert o["valid_after_logout"] is False


def test_query(service, dl_users, tmp_path):
    o = drive(service, "query", tmp_path)
    sirius = "hip,ra,dec,hpmag,b_v\n32349,101.2885410520664,-16.713143062644765,-1.0876,0.009\n"
    assert o["csv"] == sirius and o["csv_positional"] == sirius and o["csv_token_positional"] == sirius
    assert o["pandas"] == {"cols": ["hip", "ra", "dec", "hpmag", "b_v"], "hpmag": -1.0876, "rows": 1}
    assert o["table"] == {"cols": ["hip", "ra", "dec", "hpmag", "b_v"], "hip": 32349}
    assert o["array"] == [[32349.0, -1.0876], [91262.0, 0.0868]]
    assert o["structarray"] == ["hip", "ra", "dec", "hpmag", "b_v"]
    assert o["votable"].startswith("<?xml") and "VOTABLE" in o["votable"]
    assert o["tsv"] == sirius.replace(",", "\t")
    assert o["adql"] == "hip,hpmag\n32349,-1.0876\n30438,-0.5536\n91262,0.0868\n"
    assert o["special"] == "a,b,c\nNaN,Infinity,\n"
    assert o["out_local"] == "OK" and o["local_file"] == sirius
    assert o["out_mydb"] == "OK"
    assert o["mydb_count"] == "n\n46\n"
    assert 40 <= o["xmatch"][0] <= 46  # bright stars with a Gaia counterpart within 1 arcmin (epochs differ)
    assert o["error"]["raised"] == "queryClientError" and 'column "nope" does not exist' in o["error"]["message"]
    assert o["error_table"]["raised"] == "queryClientError" and "no_such" in o["error_table"]["message"]
    assert re.fullmatch(r"[0-9a-f]{20}", o["jobid"])
    assert o["wait"] == "COMPLETED" and o["status"] == "COMPLETED"
    assert o["results"].startswith("hip\n") and len(o["results"].splitlines()) > 5
    assert o["async_wait"] == [1, 5]
    assert o["bad_wait"] == "ERROR" and "division by zero" in o["bad_error"]
    assert o["abort"] == "ABORTED" and o["abort_status"] == "ABORTED"
    assert o["jobid"] in o["jobs_text"] and "COMPLETED" in o["jobs_text"]
    assert any(j["jobid"] == o["jobid"] for j in o["jobs_json"])
    assert o["timeout"]["raised"] == "queryClientError" and "time limit" in o["timeout"]["message"]
    assert "Schema Name" in o["schema"] and "hipparcos" in o["schema"]
    assert "Column Name" in o["schema_table"] and "hpmag" in o["schema_table"]
    assert "default" in o["profiles"]
    assert "starbox_tap" in o["services"]
    assert "hipparcos,main,117955" in o["tbl_stat"]


def test_out_vos_wrote_the_file(service, dl_users, tmp_path):
    home = service.settings.storage_dir / "users" / "dluser"
    if not (home / "sirius.csv").exists():
        drive(service, "query", tmp_path)
    assert (home / "sirius.csv").read_text().startswith("hip,ra,dec,hpmag,b_v\n32349,")


def test_mydb(service, dl_users, tmp_path):
    o = drive(service, "mydb", tmp_path)
    assert o["flush"] == "OK" and o["import_df"] == "OK" and o["import_file"] == "OK"
    assert set(o["list"].split()) >= {"targets", "targets2"}
    assert "ra" in o["list_table"] and "dec" in o["list_table"]
    assert o["create"] == "OK" and o["insert"] == "OK"
    assert o["made"] == "id,name\n1,one\n2,two\n"
    assert o["index"] == "OK" and o["index_col"] == "OK"
    assert o["xmatch"] == "id,hip\n1,32349\n2,91262\n"  # Sirius and Vega found through q3c_join
    assert o["rename"] == "OK" and o["copy"] == "OK" and o["truncate"] == "OK"
    assert o["count4"] == "n\n0\n"
    assert o["drop"] == "OK" and 'relation "targets4" not known' in o["drop_missing"]
    assert "Invalid table name" in o["invalid_name"]["message"]
    assert "targets3" in o["list_after"] and "targets4" not in o["list_after"]


def test_storage_and_sharing(service, dl_users, tmp_path):
    (tmp_path / "a").mkdir()
    o = drive(service, "storage", tmp_path / "a")
    assert o["put"] == "OK" or o["put"] == ["OK"]
    assert "hello.txt" in o["ls"].split(",") and "public" in o["ls"].split(",")
    assert "hello.txt" in o["ls_long"] and "dluser" in o["ls_long"]
    assert o["stat"]["type"] == "data" and int(o["stat"]["size"]) == 14
    assert o["stat_missing"] == {}
    assert o["access"] is True
    assert o["get"] == "hello starbox\n" and o["fetched"] == "hello starbox\n"
    assert o["mkdir"] == "OK" and "already exists" in o["mkdir_again"]
    assert o["cp"] == "OK" and o["mv"] == "OK" and o["ls_dir"] == "moved.txt"
    assert o["ln"] == "OK" and o["tag"] == "OK"
    assert o["rm"] == "OK" and o["rmdir"] == "OK" and "does not exist" in o["rm_missing"]
    assert o["saveAs"] in ("OK", ["OK"])
    assert "default" in o["profiles"]
    assert "dir1" not in o["ls_final"].split(",") and "saved.txt" in o["ls_final"].split(",")
    (tmp_path / "b").mkdir()
    s = drive(service, "sharing", tmp_path / "b")
    assert s["read_public"] == "hello starbox\n"
    # dl fetches whatever /get answers as a URL, so a refusal surfaces inside requests' error
    assert "permission denied" in s["read_private"]["message"]
    assert "not writable" in str(s["write_public"])
    assert not (service.settings.storage_dir / "users" / "dluser" / "public" / "intruder.txt").exists()
    assert "shared.txt" in s["ls_owner_public"]
    assert s["mydb_other"]["raised"] == "queryClientError" and "permission denied" in s["mydb_other"]["message"]


def test_res_client_user_record_and_password(service, dl_users, tmp_path):
    """dl.resClient: listFields, getUser of one's own record (dl sends the name under 'None'),
    refusals for another's record and anonymously, createUser refused, passwordReset."""
    token = service.add_user("dlres", PASSWORD)
    with service.client(token) as c:
        assert c.get("/res/set", params={"what": "user", "keyword": "email", "value": "dl@example.org"}).text == "OK"
    o = drive(service, "res", tmp_path, user="dlres", new_password="dl-client-pw-2")
    assert o["fields"] == "username,email,name,institute,created"
    assert o["email_before"] == "dl@example.org" and o["created"].startswith("20")
    assert o["other"]["raised"] == "dlResError" and "only read and change their own" in o["other"]["message"]
    assert o["unknown"]["raised"] == "dlResError" and "no field 'shoe_size'" in o["unknown"]["message"]
    assert o["anonymous"]["raised"] == "dlResError" and "logged-in user" in o["anonymous"]["message"]
    assert o["set"]["raised"] == "TypeError"  # dl's own bug: its setUser never passes the value on
    assert "makes no accounts on request" in o["create"]
    assert "own password" in o["reset_other"]["message"]
    assert o["reset"] is None and o["old_token_valid"] is False
    assert o["login_new"] is True and "Invalid password" in o["login_old"]
