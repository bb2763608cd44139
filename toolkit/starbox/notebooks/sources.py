"""Where lessons come from (``lessons_repo``) and fetching them.

A git URL, or a local path to a git repository (both cloned at ``lessons_branch``); a local
folder that is not a repository is copied as it is; empty means this project's own
``lessons/`` folder, copied from the working tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

from .versions import check_links, copy_tree, remove_tree

GIT_TIMEOUT = 300


@dataclass
class Fetched:
    tree: Path
    commit: str  # a git sha, or a content digest for a plain folder
    subject: str = ""
    kind: str = "git"  # git | folder


def source(settings: Settings) -> str:
    """The repository or folder lessons are published from."""
    return settings.lessons_repo or str(settings.project_root / "lessons")


def is_url(repo: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", repo, re.I)) or bool(re.match(r"^[\w.-]+@[\w.-]+:", repo))


def _git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise StarboxError("git is not installed; install it (apt-get install git) to publish lessons") from None
    except subprocess.TimeoutExpired:
        raise StarboxError(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
        raise StarboxError(f"git {args[0]} failed: {lines[-1] if lines else f'exit status {proc.returncode}'}")
    return proc.stdout.strip()


def _git_url(repo: str) -> str:
    if is_url(repo):
        return repo
    return Path(repo).expanduser().resolve().as_uri()  # file://: --depth works, hooks do not run


def _is_git_repo(path: Path) -> bool:
    """A repository whose top level (or bare directory) is `path` itself, not a folder inside one."""
    if not path.is_dir():
        return False
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".ipynb_checkpoints"))
        for f in sorted(filenames):
            p = Path(dirpath, f)
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            with contextlib.suppress(OSError):
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def is_git_source(settings: Settings) -> bool:
    repo = source(settings)
    return is_url(repo) or _is_git_repo(Path(repo).expanduser())


def remote_head(settings: Settings) -> str | None:
    """The commit the configured branch points at now, without fetching it: None for a plain
    folder, "" when the branch does not exist."""
    if not is_git_source(settings):
        return None
    out = _git("ls-remote", "--", _git_url(source(settings)), f"refs/heads/{settings.lessons_branch}", timeout=60)
    return out.split()[0] if out else ""


def fetch(settings: Settings, dest: Path) -> Fetched:
    """Fetch the configured lessons into `dest` (which must not exist); a tree with a symlink
    leading outside it is refused (versions.check_links)."""
    repo = source(settings)
    local = None if is_url(repo) else Path(repo).expanduser()
    if local is not None and not local.exists():
        raise StarboxError(f"lessons repository {repo} does not exist (setting lessons_repo)")
    if local is not None and not _is_git_repo(local):
        copy_tree(local, dest)
        return Fetched(dest, tree_digest(dest)[:12], "", "folder")
    branch = settings.lessons_branch
    try:
        _git(
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--single-branch",
            "--branch",
            branch,
            "--no-tags",
            "--",
            _git_url(repo),
            str(dest),
        )
    except StarboxError as exc:
        if "not found" in str(exc) and "branch" in str(exc).lower():
            raise StarboxError(f"branch {branch!r} not found in {repo}") from None
        raise
    commit = _git("rev-parse", "HEAD", cwd=dest)
    subject = _git("log", "-1", "--format=%s", cwd=dest)
    remove_tree(dest / ".git")
    check_links(dest)
    return Fetched(dest, commit, subject, "git")


def notebooks_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
