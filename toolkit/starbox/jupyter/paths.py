"""Where the Jupyter side lives: folders, files and URLs, and the names inside the work folder."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote, urlsplit

from starbox.settings import Settings

READ_ONLY_DIR = "notebooks-latest"  # inside the work folder: the published lessons
WELCOME = "Welcome.ipynb"
LESSON_COPY = "lessons"
STORAGE_DIR = "storage"  # the Starbox storage, served by the lab (storage_folder.py)


def appliance_dir(settings: Settings) -> Path:
    return settings.project_root / "appliance" / "jupyter"


def apps_dir(settings: Settings) -> Path:
    return settings.project_root / "voila_apps"


def work_dir(settings: Settings) -> Path:
    return settings.home / "work"


def state_dir(settings: Settings) -> Path:
    """HOME, JUPYTER_CONFIG_DIR and the runtime folder of the Jupyter processes."""
    return settings.home / "jupyter"


def lab_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.jupyter_port}/lab"


def voila_base(settings: Settings) -> str:
    """Voilà's base URL: the root in personal mode; /apps/ in shared mode, where the hub's public
    port routes that path to it (hub/config.py)."""
    return "/apps/" if settings.shared else "/"


def voila_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.voila_port}{voila_base(settings)}"


def app_url(settings: Settings, notebook: str) -> str:
    return f"{voila_url(settings)}voila/render/{quote(notebook)}"


def manual_url(settings: Settings) -> str:
    """The user manual, served by the service at /docs/."""
    return f"{settings.service_url.rstrip('/')}/docs/"


def help_lines(settings: Settings) -> list[str]:
    """What `starbox up` prints about this part."""
    return [
        f"JupyterLab: {lab_url(settings)}  (no password: it listens on this computer only)",
        f"  your work folder: {work_dir(settings)}",
        f"Voilà apps: {voila_url(settings)}",
    ]


def voila_hostnames(settings: Settings) -> list[str]:
    """Host names Voilà answers to besides loopback addresses (DNS rebinding: a page on another
    site that makes its name resolve to 127.0.0.1 sends its own name as Host): localhost, the
    service host and the host of STARBOX_URL, as JupyterLab's local_hostnames."""
    names = ["localhost", settings.service_host, urlsplit(settings.service_url).hostname or ""]
    return sorted({n.lower() for n in names if n and "," not in n})


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def move_aside(folder: Path) -> None:
    """A real folder named storage/ in a home would be hidden behind the storage folder: it is
    renamed, never lost."""
    target = folder / STORAGE_DIR
    if target.exists() or target.is_symlink():
        n = 0
        while (moved := folder / f"{STORAGE_DIR}.moved-by-starbox{'.' + str(n) if n else ''}").exists():
            n += 1
        target.rename(moved)
