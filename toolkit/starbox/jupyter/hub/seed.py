"""Prepare a hub user's home before their lab starts. Runs *as that user* (the spawner starts
`python -m starbox.jupyter.hub.seed` with the user's uid), so nothing here can be turned by a
symlink in the home into a write elsewhere; it reads what it needs as JSON on stdin:
{"account", "token", "service_url", "welcome", "lessons"}.

What the home gets:
* the login, so no notebook needs a login cell: ~/.starbox/token, and ~/.datalab as both clients
  read it (the toolkit's id_token.<user> and starbox_login.json; dl's dl.conf saying loggedin),
  all 0600 in 0700 folders;
* notebooks-latest, a link to the read-only published lessons; lessons/, the user's own copy
  (getlatest: the user's changes are kept); Welcome.ipynb, read-only, rebuilt each start.
"""

from __future__ import annotations

import configparser
import io
import json
import os
import sys
from pathlib import Path

from starbox import settings as settings_mod

from ..paths import LESSON_COPY, READ_ONLY_DIR, WELCOME, move_aside, write_private
from ..workspace import copy_lessons, write_read_only


def _link(path: Path, target: str) -> None:
    if path.is_symlink() and os.readlink(path) == target:
        return
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        path.rename(path.with_name(f"{path.name}.moved-by-starbox"))
    path.symlink_to(target)


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_login(home: Path, account: str, token: str, service_url: str) -> None:
    starbox_dir = _private_dir(home / ".starbox")
    write_private(starbox_dir / "token", token + "\n")
    datalab = _private_dir(home / ".datalab")
    write_private(datalab / f"id_token.{account}", token)
    write_private(datalab / "starbox_login.json", json.dumps({"user": account}))
    conf = configparser.RawConfigParser()
    conf["datalab"] = {"created": "by Starbox"}
    conf["login"] = {"status": "loggedin", "user": account, "authtoken": token}
    conf["auth"] = {"profile": "default", "svc_url": f"{service_url}/auth"}
    conf["query"] = {"profile": "default", "svc_url": f"{service_url}/query"}
    conf["storage"] = {"profile": "default", "svc_url": f"{service_url}/storage"}
    conf["vospace"] = {"mount": ""}
    text = io.StringIO()
    conf.write(text)
    write_private(datalab / "dl.conf", text.getvalue())


def seed(home: Path, request: dict) -> None:
    account, token = request["account"], request["token"]
    write_login(home, account, token, request["service_url"])
    lessons = request.get("lessons")
    if lessons:
        _link(home / ".starbox" / "notebooks-latest", lessons)
        _link(home / READ_ONLY_DIR, lessons)
        copy_lessons(settings_mod.load(), home / LESSON_COPY)
    write_read_only(home / WELCOME, request["welcome"])
    move_aside(home)  # storage/ is the Starbox storage, served by the lab (storage_folder.py)


def main() -> None:
    request = json.loads(sys.stdin.read())
    home = Path(os.environ["HOME"])
    os.umask(0o077)
    seed(home, request)


if __name__ == "__main__":
    main()
