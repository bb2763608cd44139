"""What every hub user may read, kept root-owned and world-readable in `hub_share`: the published
lessons (a copy of the live version, swapped atomically like notebooks-latest), the lab's settings
and the Jupyter configuration of the appliance. The hub refreshes it before each spawn."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

from ..paths import appliance_dir
from .paths import lessons_link

KEEP_VERSIONS = 3  # older copies go; a lab still reading one keeps its open files


def reachable(path: Path, setting: str) -> None:
    """Refuse a folder hub users cannot pass through to: changing another folder's mode (say,
    /root's) is the admin's decision, not the hub's."""
    for folder in path.parents:
        if not folder.stat().st_mode & 0o001:
            raise StarboxError(
                f"hub users cannot reach {path}: {folder} is closed to them; set {setting} to a folder under /opt or /srv"
            )


def _make_readable(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            os.chmod(os.path.join(dirpath, f), 0o644)


def _copy_tree(src: Path, dest: Path) -> None:
    """dest becomes a readable copy of src, all at once (copied beside it, then renamed)."""
    part = dest.with_name(f".{dest.name}.part")
    shutil.rmtree(part, ignore_errors=True)
    shutil.copytree(src, part, symlinks=False, ignore=shutil.ignore_patterns(".git", ".ipynb_checkpoints"))
    _make_readable(part)
    old = dest.with_name(f".{dest.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    os.replace(part, dest)
    shutil.rmtree(old, ignore_errors=True)


def _swap_link(link: Path, target: str) -> None:
    tmp = link.with_name(f".{link.name}.new")
    if os.path.lexists(tmp):
        tmp.unlink()
    tmp.symlink_to(target)
    os.replace(tmp, link)


def sync_lessons(settings: Settings) -> str | None:
    """The live lessons' version, copied into the share if it is new there; None when nothing
    is published."""
    live = settings.notebooks_latest
    if not os.path.lexists(live) or not Path(os.path.realpath(live)).is_dir():
        return None
    source = Path(os.path.realpath(live))
    versions = settings.hub_share / "lessons"
    versions.mkdir(parents=True, exist_ok=True)
    os.chmod(versions, 0o755)
    dest = versions / source.name
    if not dest.is_dir():
        _copy_tree(source, dest)
    _swap_link(lessons_link(settings), f"lessons/{source.name}")
    kept = sorted((p for p in versions.iterdir() if p.is_dir() and not p.name.startswith(".")), key=os.path.getmtime)
    for old in kept[:-KEEP_VERSIONS]:
        if old.name != source.name:
            shutil.rmtree(old, ignore_errors=True)
    return source.name


def _sync_dir(src: Path, dest: Path) -> None:
    if not dest.is_dir() or _digest(src) != _digest(dest):
        _copy_tree(src, dest)


def _digest(root: Path) -> list[tuple[str, bytes]]:
    return sorted((str(p.relative_to(root)), p.read_bytes()) for p in root.rglob("*") if p.is_file())


def sync(settings: Settings) -> str | None:
    """Refresh the share; returns the lessons' version (None: nothing published)."""
    share = settings.hub_share
    share.mkdir(parents=True, exist_ok=True)
    os.chmod(share, 0o755)
    reachable(share, "hub_share")
    _sync_dir(appliance_dir(settings) / "lab-settings", share / "lab-settings")
    _sync_dir(appliance_dir(settings) / "config", share / "config")
    return sync_lessons(settings)
