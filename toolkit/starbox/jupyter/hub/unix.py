"""One Unix user per Starbox account (TLJH's pattern): a fixed prefix, so no account can become
`root` or any other existing user; at most 32 characters; a private home, made once."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

MAX_NAME = 32  # Linux's limit for a user name
GROUP = "starbox-users"  # every hub user; lets an admin grant them something at once


def system_name(settings: Settings, account: str) -> str:
    """`<prefix><account>`; a longer name is cut and given a hash, so two never meet."""
    name = f"{settings.hub_user_prefix}{account}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:5]
    return f"{name[: MAX_NAME - 6]}-{digest}"


def lookup(settings: Settings, account: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(system_name(settings, account))
    except KeyError:
        return None


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise StarboxError(f"{argv[0]} failed: {(done.stderr or done.stdout).strip()}")


def ensure_group() -> None:
    try:
        grp.getgrnam(GROUP)
    except KeyError:
        _run(["groupadd", "--system", GROUP])


def ensure_user(settings: Settings, account: str) -> pwd.struct_passwd:
    """The account's Unix user, made on first use (idempotent). Its home is 0700; its login
    shell is bash for the lab's terminal; it has no password, so nobody logs in as it."""
    existing = lookup(settings, account)
    if existing is None:
        ensure_group()
        name = system_name(settings, account)
        home = settings.hub_homes / name
        settings.hub_homes.mkdir(parents=True, exist_ok=True)
        _run(
            [
                "useradd",
                "--create-home",
                "--home-dir",
                str(home),
                "--shell",
                "/bin/bash",
                "--user-group",
                "--groups",
                GROUP,
                "--comment",
                f"Starbox account {account}",
                name,
            ]
        )
        existing = pwd.getpwnam(name)
    home = Path(existing.pw_dir)
    if home.is_dir() and not home.is_symlink():
        os.chmod(home, 0o700)
    return existing


def remove_user(settings: Settings, account: str) -> bool:
    """Remove the account's Unix user with its home and its processes; False if there was none."""
    user = lookup(settings, account)
    if user is None:
        return False
    _kill_all(user.pw_uid)
    _run(["userdel", "--remove", user.pw_name])
    if Path(user.pw_dir).exists():  # userdel leaves a home it did not make
        shutil.rmtree(user.pw_dir, ignore_errors=True)
    return True


def _processes(uid: int) -> dict[int, bool]:
    """The user's processes, each with whether it is a zombie (dead, waiting for its parent)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:  # gone meanwhile
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            found[int(entry.name)] = fields.get("State", "").strip().startswith("Z")
    return found


def _kill_all(uid: int, wait_s: float = 15.0) -> None:
    """SIGKILL is sent at once but lands later, a lab's children may fork meanwhile and the hub
    reaps its dead labs a moment after: userdel refuses a user while any of these is listed, so
    kill again until none is (then userdel says what stays)."""
    deadline = time.monotonic() + wait_s
    while (found := _processes(uid)) and time.monotonic() < deadline:
        for pid, zombie in found.items():
            if not zombie:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass
        time.sleep(0.1)
