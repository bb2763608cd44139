"""The work folder JupyterLab opens: the lesson copy, the read-only view, the welcome page."""

from __future__ import annotations

import json
import os
import platform
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from starbox.errors import StarboxError
from starbox.notebooks import getlatest, publish
from starbox.settings import Settings

from .paths import (
    LESSON_COPY,
    READ_ONLY_DIR,
    WELCOME,
    app_url,
    appliance_dir,
    apps_dir,
    manual_url,
    move_aside,
    state_dir,
    voila_url,
    work_dir,
    write_private,
)

LESSON_FOLDERS = {  # Data Lab's folders, in plain words
    "01_GettingStarted": "Getting started",
    "02_DataAccessOverviews": "Data access overviews",
    "03_ScienceExamples": "Science examples",
    "04_HowTos": "How-tos",
    "05_Contrib": "Contributed notebooks",
    "06_EPO": "For students (ages 12 to 18)",
}
NEW_BESIDE = re.compile(r"\.new-\d{8}(-\d+)?\.ipynb$")  # getlatest's new version beside a changed lesson


def ensure_lessons(settings: Settings) -> None:
    """Publish the lessons (untested: a first start does not wait for the harness) when nothing
    is published yet; a failure is reported and does not stop JupyterLab from starting."""
    outcome = publish.ensure_published(settings, test=False)
    if outcome is not None and not outcome.ok:
        print(f"warning: no lessons published: {outcome.reason}", file=sys.stderr)


def copy_lessons(settings: Settings, dest: Path) -> None:
    """The student's writable copy of the published lessons (Data Lab's `getlatest`: new files
    copied, untouched ones updated, the student's changed files kept with the new version beside
    them), once per published version. A broken publication is reported and does not stop
    JupyterLab from starting."""
    try:  # nothing to bring over when the copy is of the live version
        copied = json.loads((dest / getlatest.MANIFEST).read_text()).get("version")
        if copied == Path(os.path.realpath(settings.notebooks_latest)).name:
            return
    except (OSError, ValueError, AttributeError):
        pass
    try:
        getlatest.getlatest(settings, dest)
    except StarboxError as exc:
        print(f"warning: the lessons were not copied into {dest}: {exc}", file=sys.stderr)


def _notebook_title(path: Path) -> str:
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            if cell.get("cell_type") != "markdown":
                continue
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            for line in source.splitlines():
                match = re.match(r"^\s*#{1,2}\s+(.+?)\s*#*\s*$", line)
                if match:
                    return re.sub(r"[*_`]", "", match.group(1)).strip()
    except (OSError, ValueError, AttributeError):
        pass
    return path.stem.replace("_", " ")


def _lesson_list(root: Path) -> str:
    """Markdown links to every lesson under `root` (the writable copy, or the published lessons
    the copy is made of), by Data Lab folder; the links lead into the copy, lessons/."""
    notebooks = (
        sorted(
            p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and not NEW_BESIDE.search(p.name)
        )
        if root.is_dir()
        else []
    )
    if not notebooks:
        return (
            "*No lessons are published yet.* When they are, they appear here and in the "
            f"`{LESSON_COPY}/` folder on the left."
        )
    groups: dict[str, list[Path]] = {}
    for nb in notebooks:
        rel = nb.relative_to(root)
        groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else "", []).append(nb)
    lines = []
    for folder in sorted(groups):
        heading = LESSON_FOLDERS.get(folder, folder.replace("_", " ")) if folder else "Other lessons"
        lines.append(f"### {heading}\n")
        for nb in groups[folder]:
            link = quote(f"{LESSON_COPY}/{nb.relative_to(root).as_posix()}")
            lines.append(f"- [{_notebook_title(nb)}]({link})")
        lines.append("")
    return "\n".join(lines).strip()


@dataclass(frozen=True)
class WelcomeLinks:
    """Where the welcome page's links lead: the apps, one app, the manual."""

    apps: str
    app: Callable[[str], str]
    manual: str


def personal_links(settings: Settings) -> WelcomeLinks:
    return WelcomeLinks(voila_url(settings), lambda nb: app_url(settings, nb), manual_url(settings))


def welcome_text(
    settings: Settings, lessons: Path, user: str, work: str, links: WelcomeLinks, account_note: str = ""
) -> str:
    """Welcome.ipynb from the template in appliance/jupyter, with the lesson links filled in;
    `account_note` follows the login line (a class account's end date)."""
    template = json.loads((appliance_dir(settings) / WELCOME).read_text(encoding="utf-8"))
    values = {
        "{{lessons}}": _lesson_list(lessons),
        "{{voila_url}}": links.apps,
        "{{manual_url}}": links.manual,
        "{{user}}": user,
        "{{account_note}}": account_note,
        "{{work_dir}}": work,
        "{{read_only_dir}}": READ_ONLY_DIR,
        "{{lesson_copy}}": LESSON_COPY,
    }
    apps = sorted(p.name for p in apps_dir(settings).glob("*.ipynb"))
    values["{{apps}}"] = (
        "\n".join(f"- [{_notebook_title(apps_dir(settings) / a)}]({links.app(a)})" for a in apps) or "*none yet*"
    )
    # What the kernel will report, so that opening the page does not mark it changed.
    template["metadata"]["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
        "version": platform.python_version(),
    }
    for cell in template["cells"]:
        source = cell["source"]
        source = "".join(source) if isinstance(source, list) else source
        for key, value in values.items():
            source = source.replace(key, value)
        cell["source"] = source
    return json.dumps(template, indent=1, ensure_ascii=False) + "\n"


def write_read_only(path: Path, text: str) -> Path:
    """Write the page (0444), replacing an older one."""
    if path.exists():
        os.chmod(path, 0o644)
    write_private(path, text)
    os.chmod(path, 0o444)
    return path


def write_welcome(settings: Settings) -> Path:
    """The personal lab's welcome page, in the work folder."""
    work = work_dir(settings)
    text = welcome_text(settings, work / LESSON_COPY, settings.local_user, str(work), personal_links(settings))
    return write_read_only(work / WELCOME, text)


def ensure_workspace(settings: Settings) -> Path:
    """The work folder: the lesson copy, the read-only view, the welcome page. Returns it."""
    ensure_lessons(settings)
    work = work_dir(settings)
    work.mkdir(parents=True, exist_ok=True)
    view = work / READ_ONLY_DIR
    if not view.is_symlink():
        if view.exists():
            raise StarboxError(f"{view} should be a link to {settings.notebooks_latest}; move it away and start again")
        view.symlink_to(settings.notebooks_latest)
    copy_lessons(settings, work / LESSON_COPY)
    move_aside(work)  # storage/ is the Starbox storage, served by the lab (storage_folder.py)
    write_welcome(settings)
    for sub in ("home", "config", "runtime"):
        (state_dir(settings) / sub).mkdir(parents=True, exist_ok=True)
    return work
