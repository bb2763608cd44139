"""Lesson versions on disk and the `notebooks-latest` symlink: the one place lesson trees are
installed, swapped live, pruned and rolled back.

    notebooks-latest -> notebooks-versions/20250301T101500123Z-1a2b3c4   (a symlink)
    notebooks-versions/
        20250301T101500123Z-1a2b3c4/   one complete, read-only lesson set per version
        .incoming-*/                   a fetch in progress (never what the symlink points at)

A version folder gets its final name only once it is complete (a rename of the fetched tree),
and `notebooks-latest` moves to it with ``os.replace`` of a new symlink, so a reader sees the old
set or the new one, never a mix, a half-copied folder or no folder. The previous versions stay;
rollback points the symlink back.

A lesson tree may hold symlinks only to files and folders inside itself, by relative paths
(`check_links`): the harness's copy, getlatest's copy and JupyterLab all follow links, so one
pointing outside would let them read (or chmod) files that are not lessons.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

from .state import Log, locked, logger, now, read_json, state_dir, write_json

KEEP = 5  # versions kept besides the live one: the last KEEP that were live, and the KEEP newest
# UTC time (ms) and commit; also the seconds-only, Z-less stamps that older installs made.
VERSION_RE = re.compile(r"^\d{8}T\d{6}(?:\d{3})?Z?-[0-9a-z]+$")
SKIPPED = (".git", ".ipynb_checkpoints", "__pycache__")


def current(settings: Settings) -> str | None:
    """The live version's id, or None when nothing is published."""
    link = settings.notebooks_latest
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError:  # a real folder (not ours): live, but not a version we can name
        return "(unmanaged folder)" if link.is_dir() else None
    return Path(target).name


def versions(settings: Settings) -> list[str]:
    """Version ids on disk, oldest first (ids sort by publication time)."""
    try:
        names = os.listdir(settings.notebooks_versions)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if VERSION_RE.match(n) and (settings.notebooks_versions / n).is_dir())


def next_stamp(settings: Settings) -> str:
    """A UTC time stamp in milliseconds, later than every version on disk, so ids sort in the
    order they were published even within one second or after the clock stepped back."""
    stamp = datetime.now(timezone.utc).replace(tzinfo=None)
    newest = [v for v in versions(settings) if re.match(r"^\d{8}T\d{9}Z", v)]
    if newest:
        last = datetime.strptime(newest[-1][:18], "%Y%m%dT%H%M%S%f")
        stamp = max(stamp, last + timedelta(milliseconds=1))
    return f"{stamp:%Y%m%dT%H%M%S}{stamp.microsecond // 1000:03d}Z"


def history(settings: Settings) -> dict:
    data = read_json(state_dir(settings) / "history.json", {})
    data.setdefault("live", [])
    data.setdefault("versions", {})
    return data


def save_history(settings: Settings, data: dict) -> None:
    write_json(state_dir(settings) / "history.json", data)


# --- lesson trees ------------------------------------------------------------------------------


def check_links(root: Path) -> None:
    """Refuse a tree holding a symlink that is absolute or leads outside it (see the module)."""
    top = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                continue
            target = os.readlink(path)
            real = os.path.realpath(path)
            if os.path.isabs(target) or (real != top and not real.startswith(top + os.sep)):
                rel = Path(path).relative_to(root).as_posix()
                raise StarboxError(
                    f"{rel} is a symlink to {target}, outside the lessons; replace it with the file itself"
                )


def copy_tree(source: Path, dest: Path) -> None:
    """Copy a folder of lessons to `dest` (which must not exist), symlinks as symlinks; checked."""
    shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns(*SKIPPED, "*.pyc", ".DS_Store"))
    check_links(dest)


def make_read_only(root: Path) -> None:
    for dirpath, _dirnames, filenames in os.walk(root):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):  # chmod follows links
                os.chmod(p, 0o444)
        os.chmod(dirpath, 0o555)


def remove_tree(path: Path) -> None:
    """rmtree for read-only version folders."""

    def retry(func, p, _exc_info):
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o755)
            if not os.path.islink(p):
                os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        func(p)

    for dirpath, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(path, onerror=retry)  # onerror: Python 3.11


def install(settings: Settings, tree: Path, label: str) -> str:
    """Make `tree` (complete, under notebooks-versions) the read-only version `<stamp>-<label>`,
    and live. Returns the version id. The caller holds the lock."""
    check_links(tree)
    version = f"{next_stamp(settings)}-{label}"
    make_read_only(tree)
    os.chmod(tree, 0o755)  # moving a folder to another parent rewrites its '..' entry
    os.rename(tree, settings.notebooks_versions / version)  # complete under its final name
    os.chmod(settings.notebooks_versions / version, 0o555)
    swap(settings, version)
    return version


def swap(settings: Settings, version: str) -> None:
    """Point notebooks-latest at `version` in one step: a new symlink renamed over the old one."""
    link = settings.notebooks_latest
    target = settings.notebooks_versions / version
    if not target.is_dir():
        raise StarboxError(f"version {version} is not on disk")
    relative = os.path.relpath(target, link.parent)
    if link.is_dir() and not link.is_symlink():
        # A plain folder from before publishing existed: keep it as a version, then link.
        legacy = settings.notebooks_versions / f"{next_stamp(settings)}-legacy"
        os.rename(link, legacy)
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}")
    os.symlink(relative, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def prune(settings: Settings, data: dict, log: Log) -> None:
    """Remove versions that are neither among the last KEEP live nor the KEEP newest, and what
    a publish that died left behind. The caller holds the lock."""
    live = current(settings)
    on_disk = versions(settings)
    keep = set(data["live"][-(KEEP + 1) :]) | set(on_disk[-(KEEP + 1) :]) | {live}
    for v in on_disk:
        if v not in keep:
            remove_tree(settings.notebooks_versions / v)
            data["versions"].pop(v, None)
            log(f"removed old version {v}")
    data["live"] = [v for v in data["live"] if (settings.notebooks_versions / v).is_dir()]
    for name in os.listdir(settings.notebooks_versions):
        if name.startswith(".incoming-"):
            remove_tree(settings.notebooks_versions / name)


def rollback(settings: Settings, to: str | None = None, echo: Log | None = None) -> tuple[str | None, str]:
    """Make the version that was live before the current one live again (or `to`).

    Returns (from, to). Plain rollbacks undo publishes one at a time.
    """
    log = logger(settings, echo)
    with locked(settings):
        data = history(settings)
        live = current(settings)
        on_disk = set(versions(settings))
        if to:
            if to not in on_disk:
                raise StarboxError(f"no version {to}; `starbox notebooks status` lists them")
            target = to
            data["live"].append(to)
        else:
            stack = [v for v in data["live"] if v in on_disk]
            if live in stack:
                stack = stack[: len(stack) - 1 - stack[::-1].index(live)]  # drop live and what came after
            if not stack:
                raise StarboxError(
                    "no earlier version to roll back to"
                    + (f" ({live} is the oldest kept)" if live else " (nothing is published)")
                )
            target = stack[-1]
            data["live"] = stack
        swap(settings, target)
        save_history(settings, data)
        log(f"rollback: {live} -> {target}")
        status_file = state_dir(settings) / "status.json"
        write_json(status_file, {**read_json(status_file, {}), "rollback": {"from": live, "to": target, "at": now()}})
        return live, target
