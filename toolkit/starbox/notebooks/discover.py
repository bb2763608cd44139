"""Find the notebooks to test: named files, plus folders searched recursively.

Exclusions follow a small subset of .gitignore rules, so they read the same
way in the CLI, in ``.nbtestignore`` files and in the defaults:

* a pattern without ``/`` matches a file or folder name at any depth;
* a pattern with ``/`` is anchored to the folder holding the ignore file
  (or to the searched folder, for ``--exclude`` and the defaults);
* ``*`` and ``?`` stay inside one path component, ``**`` crosses them;
* a trailing ``/`` matches folders only.

A notebook named explicitly on the command line is always tested: the user
asked for it, so neither the defaults nor an ignore file can drop it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

IGNORE_FILE = ".nbtestignore"

DEFAULT_EXCLUDES = (
    # Hidden folders: .ipynb_checkpoints holds autosave copies, .git/.venv
    # hold other people's files.
    ".*/",
    # Executed copies written by nbconvert, papermill or the Data Lab harness.
    "*.nbconvert.ipynb",
    "*-executed.ipynb",
    "*_tested.ipynb",
    # Templates contain placeholders and are not meant to run.
    "*Template*.ipynb",
)


@dataclass(frozen=True)
class Target:
    """One notebook to test, or a path that could not be used (``problem``)."""

    path: Path
    name: str  # POSIX relative path shown in reports and mirrored by executed copies
    problem: str | None = None


@dataclass(frozen=True)
class Rule:
    base: Path
    regex: re.Pattern[str]
    anchored: bool
    dir_only: bool

    def matches(self, path: Path, is_dir: bool) -> bool:
        if self.dir_only and not is_dir:
            return False
        try:
            rel = path.relative_to(self.base)
        except ValueError:
            return False  # the rule belongs to another branch of the tree
        return bool(self.regex.fullmatch(rel.as_posix() if self.anchored else path.name))


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        c = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 1
        elif c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and "]" in pattern[i + 2 :]:
            end = pattern.index("]", i + 2)
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def make_rule(pattern: str, base: Path) -> Rule:
    dir_only = pattern.endswith("/")
    body = pattern.rstrip("/")
    anchored = "/" in body
    return Rule(base, glob_to_regex(body.lstrip("/")), anchored, dir_only)


def read_ignore_file(folder: Path) -> list[Rule]:
    path = folder / IGNORE_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [make_rule(s, folder) for s in (ln.strip() for ln in lines) if s and not s.startswith("#")]


def _ancestor_rules(root: Path, cwd: Path) -> list[Rule]:
    # An ignore file between the working folder and the searched folder still
    # applies, so `nbtest lessons/sub` honours lessons/.nbtestignore.
    if root != cwd and cwd not in root.parents:
        return []
    rules: list[Rule] = []
    for folder in [p for p in root.parents if p == cwd or cwd in p.parents]:
        rules += read_ignore_file(folder)
    return rules


def _walk(root: Path, patterns: Iterable[str], skip: set[Path], cwd: Path) -> Iterator[Path]:
    rules = _ancestor_rules(root, cwd) + [make_rule(p, root) for p in patterns]
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        rules += read_ignore_file(folder)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if (folder / d).resolve() not in skip and not any(r.matches(folder / d, True) for r in rules)
        )
        for f in sorted(filenames):
            if f.endswith(".ipynb") and not any(r.matches(folder / f, False) for r in rules):
                yield folder / f


def _display_name(path: Path, root: Path, cwd: Path) -> str:
    if cwd in path.parents:
        return path.relative_to(cwd).as_posix()
    return path.relative_to(root.parent).as_posix()


def discover(
    paths: Iterable[str | os.PathLike[str]] | None = None,
    exclude: Iterable[str] = (),
    *,
    skip: Iterable[str | os.PathLike[str]] = (),
    cwd: str | os.PathLike[str] | None = None,
) -> list[Target]:
    """Expand ``paths`` (default: the working folder) into notebook targets.

    Folders contribute their ``*.ipynb`` files minus the default exclusions,
    ``exclude`` and any ``.nbtestignore``; ``skip`` folders (the executed-copy
    folder) are never entered. Missing paths come back as targets with a
    ``problem`` so they show up as ERROR rows instead of vanishing.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    here = Path(cwd or os.getcwd()).resolve()
    patterns = DEFAULT_EXCLUDES + tuple(exclude)
    skip_set = {Path(s).resolve() for s in skip}
    targets: dict[Path, Target] = {}
    names: set[str] = set()

    def add(path: Path, name: str, problem: str | None = None) -> None:
        if path in targets:
            return
        if name in names:  # same relative name from two places: fall back to the full path
            name = path.as_posix().lstrip("/")
        names.add(name)
        targets[path] = Target(path, name, problem)

    for raw in list(paths or []) or [here]:
        given = Path(os.path.expanduser(raw))
        path = (here / given).resolve()
        if not path.exists():
            add(path, str(raw), f"no such file or folder: {raw}")
        elif path.is_dir():
            for nb in _walk(path, patterns, skip_set, here):
                add(nb, _display_name(nb, path, here))
        else:
            add(path, _display_name(path, path, here))
    return list(targets.values())
