"""The kernels a hub lab offers (DESI's custom kernels): the lab environment's own Python, and every
environment an admin registers with `starbox kernels add NAME PYTHON`, the "Data Lab client" among
them (appliance/install.sh --hub builds the real astro-datalab in its own environment and registers
it). The registry is the kernelspecs under `hub_share/kernels/` (root-owned, world-readable): labs
find them on JUPYTER_PATH, and may start nothing else.

The real dl client takes its service URLs from /tmp/{AM,QM,SM,RM}_SVC_URL (Data Lab's own
override). The hub writes them at start, root-owned: /tmp is sticky, so no user can put their own
there for the others' dl clients to send passwords and tokens to.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

from .share import reachable

BUILTIN = "python3"  # ipykernel's own spec, in the lab environment
BUILTIN_DISPLAY = "Python 3 (ipykernel)"  # as the lab shows it
NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,39}$")
DL_URL_FILES = {"AM_SVC_URL": "/auth", "QM_SVC_URL": "/query", "SM_SVC_URL": "/storage", "RM_SVC_URL": "/res"}


@dataclass(frozen=True)
class Kernel:
    name: str
    display_name: str
    python: str


def registry(settings: Settings) -> Path:
    return settings.hub_share / "kernels"


def listing(settings: Settings) -> list[Kernel]:
    """The lab environment's Python first, then the registered kernels by name."""
    found = [Kernel(BUILTIN, BUILTIN_DISPLAY, str(settings.hub_env / "bin" / "python"))]
    folder = registry(settings)
    for spec in sorted(folder.glob("*/kernel.json")) if folder.is_dir() else []:
        try:
            data = json.loads(spec.read_text())
            found.append(Kernel(spec.parent.name, data["display_name"], data["argv"][0]))
        except (OSError, ValueError, KeyError, IndexError):
            continue  # a broken spec is not offered
    return found


def names(settings: Settings) -> list[str]:
    return [k.name for k in listing(settings)]


def _check_python(python: Path) -> None:
    if not python.is_file() or not os.access(python, os.X_OK):
        raise StarboxError(f"{python} is not a Python interpreter that can be run")
    reachable(python, "the kernel's environment")  # labs run as their users, not root
    probe = ["runuser", "-u", "nobody", "--"] if os.geteuid() == 0 and shutil.which("runuser") else []
    done = subprocess.run(
        [*probe, str(python), "-c", "import ipykernel"], capture_output=True, text=True, timeout=120, cwd="/"
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise StarboxError(
            f"{python} cannot start a kernel for the labs' users ({last}); "
            f"install ipykernel into it ({python} -m pip install ipykernel) and make it readable to everyone"
        )


def add(settings: Settings, name: str, python: Path, display_name: str | None = None) -> Kernel:
    """Register (or replace) a kernel: a kernelspec in the share, written whole or not at all."""
    if not NAME.match(name):
        raise StarboxError(f"{name!r} is not a kernel name: lower-case letters, digits, '.', '_' and '-', at most 40")
    if name == BUILTIN:
        raise StarboxError(f"{BUILTIN} is the lab environment's own Python; choose another name")
    python = Path(os.path.abspath(python))  # the environment's own path: a venv's python is a link
    _check_python(python)
    kernel = Kernel(name, display_name or name, str(python))
    spec = {
        "argv": [kernel.python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": kernel.display_name,
        "language": "python",
        "metadata": {"starbox": {"registered_by": "starbox kernels add"}},
    }
    folder = registry(settings)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o755)
    part = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=folder))
    (part / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    os.chmod(part / "kernel.json", 0o644)
    os.chmod(part, 0o755)
    dest = folder / name
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(part, dest)
    return kernel


def remove(settings: Settings, name: str) -> None:
    dest = registry(settings) / name
    if name == BUILTIN or not NAME.match(name) or not (dest / "kernel.json").is_file():
        raise StarboxError(f"no registered kernel is called {name!r}; `starbox kernels list` shows them")
    shutil.rmtree(dest)


def point_datalab_clients(settings: Settings) -> None:
    """/tmp/*_SVC_URL naming this Starbox, root-owned; anything else under those names goes."""
    base = settings.service_url
    for fname, path in DL_URL_FILES.items():
        target = Path("/tmp") / fname
        fd, tmp = tempfile.mkstemp(prefix=f".{fname}.", dir="/tmp")
        with os.fdopen(fd, "w") as fh:
            fh.write(base + path + "\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)  # over a user's file too: root may, in sticky /tmp
