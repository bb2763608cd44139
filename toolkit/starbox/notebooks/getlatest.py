"""`getlatest [TARGETDIR]`: copy the published lessons into a folder of your own.

Like Data Lab's getlatest, but it never overwrites your work. A small manifest in the target
folder (``.getlatest.json``) remembers the hash of every file it wrote. On the next run:

* a file that is new in the lessons, or that you deleted, is copied;
* a file you have not touched since the last getlatest is replaced by the new version;
* a file you changed (its hash differs from the one recorded, or it was never recorded) is kept,
  and the new version is written beside it as ``name.new-YYYYMMDD.ext`` (and that name printed);
* files that left the lessons, and your own files, are left alone.

The copy is taken from one version: the `notebooks-latest` symlink is resolved once at the start,
so a publish in the middle of a copy cannot mix two versions.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

MANIFEST = ".getlatest.json"
SKIP_DIRS = {".git", ".ipynb_checkpoints", "__pycache__"}


@dataclass
class Result:
    target: Path
    version: str
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)  # (your file, where the new one went)
    gone: list[str] = field(default_factory=list)  # recorded before, no longer in the lessons

    def lines(self) -> list[str]:
        out = [f"lessons {self.version} -> {self.target}"]
        out += [f"  new      {p}" for p in self.new]
        out += [f"  updated  {p}" for p in self.updated]
        out += [f"  kept     {mine} (you changed it); the new version is {beside}" for mine, beside in self.kept]
        out += [f"  kept     {p} (no longer in the lessons)" for p in self.gone]
        out.append(
            f"{len(self.new)} new, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.kept)} of your changed files kept with the new version beside them"
        )
        return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(root: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for f in sorted(filenames):
            if f != MANIFEST:
                out.append(Path(dirpath, f).relative_to(root).as_posix())
    return out


def _copy(src: Path, dest: Path) -> None:
    """Write dest in one step, writable by its owner whatever the source's mode (read-only)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def beside_name(rel: str, day: date) -> str:
    """Where the new version of a file you changed goes: name.new-YYYYMMDD.ext."""
    p = Path(rel)
    suffix = "".join(p.suffixes[-1:])
    stem = p.name[: len(p.name) - len(suffix)] if suffix else p.name
    return (p.parent / f"{stem}.new-{day:%Y%m%d}{suffix}").as_posix()


LESSON_COPY_ENV = "STARBOX_LESSON_COPY"  # set by starbox.jupyter for its kernels and terminals


def default_target(settings: Settings) -> Path:
    """~/notebooks; in the appliance's JupyterLab the writable lessons/ copy in the work folder it
    shows (named by $STARBOX_LESSON_COPY)."""
    copy = os.environ.get(LESSON_COPY_ENV)
    return Path(copy) if copy else Path.home() / "notebooks"


def getlatest(settings: Settings, target: str | os.PathLike[str] | None = None, *, today: date | None = None) -> Result:
    """Copy the live lessons into `target` (default: `default_target`); see the module docstring."""
    link = settings.notebooks_latest
    if not os.path.lexists(link):
        raise StarboxError("no lessons are published yet; an admin runs `starbox notebooks publish`")
    source = Path(os.path.realpath(link))  # one version for the whole copy
    if not source.is_dir():
        raise StarboxError(
            f"{link} points at a missing folder; an admin runs `starbox notebooks rollback` "
            "or `starbox notebooks publish`"
        )
    dest = Path(os.path.expanduser(target)).absolute() if target else default_target(settings)
    if dest.exists() and not dest.is_dir():
        raise StarboxError(f"{dest} is a file, not a folder; name another folder")
    if dest.resolve() == source or source in dest.resolve().parents:
        raise StarboxError("the target is inside the published lessons; name a folder of your own")
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StarboxError(f"cannot create {dest}: {exc.strerror}") from None
    if not os.access(dest, os.W_OK):
        raise StarboxError(f"{dest} is not writable; name a folder of your own")

    manifest_path = dest / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text())
        recorded: dict[str, str] = dict(manifest.get("files", {}))
    except (OSError, ValueError, AttributeError):
        recorded = {}
    day = today or date.today()
    result = Result(dest, source.name)
    files = _files(source)

    for rel in files:
        src, out = source / rel, dest / rel
        new_hash = _sha256(src)
        if out.is_dir():
            result.kept.append((rel, "(a folder of yours has this name; the file was not copied)"))
            continue
        if not out.exists():
            _copy(src, out)
            recorded[rel] = new_hash
            result.new.append(rel)
            continue
        have = _sha256(out)
        if have == new_hash:
            recorded[rel] = new_hash
            result.unchanged.append(rel)
        elif recorded.get(rel) == have:  # ours, untouched since: safe to replace
            _copy(src, out)
            recorded[rel] = new_hash
            result.updated.append(rel)
        else:  # changed by the user (or never ours): keep it, put the new one beside it
            beside = beside_name(rel, day)
            n = 1
            while (
                (dest / beside).exists()
                and _sha256(dest / beside) != new_hash
                and recorded.get(beside) != _sha256(dest / beside)
            ):
                n += 1  # a file of the user's has that name too
                beside = beside_name(rel, day).replace(f".new-{day:%Y%m%d}", f".new-{day:%Y%m%d}-{n}")
            if not (dest / beside).exists() or _sha256(dest / beside) != new_hash:
                _copy(src, dest / beside)
            recorded[beside] = new_hash
            result.kept.append((rel, beside))

    in_lessons = set(files)
    result.gone = sorted(
        rel for rel in recorded if rel not in in_lessons and ".new-" not in rel and (dest / rel).exists()
    )
    manifest = {
        "version": source.name,
        "copied": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": dict(sorted(recorded.items())),
    }
    tmp = manifest_path.with_name(MANIFEST + ".part")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, manifest_path)
    return result
