"""Running the cluster as an unprivileged user: PostgreSQL refuses to run as root."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from starbox.errors import StarboxError


@dataclass(frozen=True)
class RunAs:
    """Who owns and runs the cluster: the current user, or a system user when we are root."""

    name: str
    uid: int
    gid: int
    home: str

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def popen_kwargs(self) -> dict:
        """Extra subprocess arguments that drop privileges to this user."""
        if self.is_self:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def resolve(system_user: str) -> RunAs:
    """The user the cluster runs as, creating the system user when we are root."""
    if os.geteuid() != 0:
        pw = pwd.getpwuid(os.geteuid())
        return RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)
    try:
        pw = pwd.getpwnam(system_user)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                system_user,
            ],
            check=True,
            capture_output=True,
        )
        pw = pwd.getpwnam(system_user)
    if pw.pw_uid == 0:
        raise StarboxError(f"system user {system_user!r} is root; set STARBOX_SYSTEM_USER to an unprivileged user")
    return RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir)


def _can_traverse(path: Path, user: RunAs) -> bool:
    st = path.stat()
    if st.st_uid == user.uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid == user.gid:
        return bool(st.st_mode & stat.S_IXGRP)
    if st.st_mode & stat.S_IXOTH:
        return True
    # An ACL may already grant it; ask getfacl when it exists.
    getfacl = shutil.which("getfacl")
    if getfacl:
        # A later chmod can shrink the ACL mask, so read the effective rights, not the entry.
        out = subprocess.run([getfacl, "-cpe", str(path)], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith(f"user:{user.name}:"):
                rights = line.split("#effective:")[-1] if "#effective:" in line else line.split()[0]
                return rights.strip().endswith("x")
    return False


def ensure_traversable(path: Path, user: RunAs) -> None:
    """Let the cluster user reach into `path`: grant search-only ACLs on the folders that block it.

    $STARBOX_HOME defaults to ~/.starbox, and root's home is mode 0700; an ACL entry that allows
    only directory traversal for the one system user is the narrowest opening that works.
    """
    if user.is_self:
        return
    resolved = path.resolve()
    for parent in [*reversed(resolved.parents), resolved]:
        if _can_traverse(parent, user):
            continue
        setfacl = shutil.which("setfacl")
        if not setfacl:
            raise StarboxError(
                f"user {user.name} cannot reach {parent}; install the Debian package 'acl' "
                f"or set STARBOX_HOME to a folder outside {parent}"
            )
        subprocess.run([setfacl, "-m", f"u:{user.name}:x", str(parent)], check=True)


def make_dir(path: Path, user: RunAs, mode: int = 0o700) -> None:
    """Create `path` owned by the cluster user with `mode`."""
    path.mkdir(parents=True, exist_ok=True)
    if not user.is_self:
        os.chown(path, user.uid, user.gid)
    path.chmod(mode)
