"""JupyterLab and Voilà for the appliance: the notebooks a newcomer opens and the student apps.

`starbox up` calls `children(settings)` and starts what it returns after the service:

* **JupyterLab** on 127.0.0.1:`jupyter_port`, **without a token or password**. That is safe only
  because it listens on the loopback interface of a one-person laptop: anyone who can open
  127.0.0.1 on the machine can already read the user's files. Never bind it elsewhere without
  turning authentication back on (a hub, or `--IdentityProvider.token`).
  Its root is `$STARBOX_HOME/work`, a writable folder that holds
  - `Welcome.ipynb`, rebuilt at every start, which opens first and links every lesson;
  - `lessons/`, the student's own copy of the published lessons (files are copied when missing,
    never overwritten, so edits survive a new publication);
  - `notebooks-latest/`, a read-only view of the published lessons (`settings.notebooks_latest`,
    the symlink the publishing code swaps). JupyterLab shows it read-only and refuses writes
    there, even for root (see `LessonsContentsManager`).
* **Voilà** on 127.0.0.1:`voila_port`, serving `voila_apps/` with pre-heated kernels: every app
  notebook is executed ahead of time in a pool of kernels (`preheat_kernel`, `default_pool_size`),
  so a page is interactive as soon as it arrives; code is hidden, tracebacks are replaced by a
  plain message. Its configuration is `appliance/jupyter/config/voila.json`. Its templates, in
  `appliance/jupyter/share/voila/templates`: `starbox-lab` is Voilà's `lab` template without the
  web-font links to a CDN, with friendly error pages; `starbox`, the default, is that page with
  Starbox's light front end (`appliance/voila-page`, ipywidgets' widget manager on the page's
  kernel) in place of Voilà's JupyterLab-based one, which a browser takes about a second of CPU
  to start. A page that meets a widget library the light front end lacks reloads on `starbox-lab`.
  What else a page costs is cut here (`StarboxVoila`): the front ends' files are cached by the
  browser for good (under a versioned URL; the widget extensions' hashed files immutable), no
  MathJax is loaded (the apps have no formulas), and the kernels that refill a pool run at a
  lower CPU priority than the page that took the last one.

Both run as the Starbox account `settings.local_user` (made here if missing, its random password
kept in `$STARBOX_HOME/secrets/<user>.password`): their kernels get `STARBOX_URL` and
`STARBOX_TOKEN`, so `from starbox import queryClient as qc; qc.query(...)` works in the first
cell. Nothing fetches from the network: news, update checks and the extension manager are off
(`appliance/jupyter/lab-settings`), and the Jupyter processes get their own `HOME`,
`JUPYTER_CONFIG_DIR` and runtime folder under `$STARBOX_HOME/jupyter`, so a developer's
~/.jupyter or ~/.datalab never leaks into the appliance.

The processes are started through this module (`python -m starbox.jupyter lab|voila ...`), which
sets that environment (reading the token from its 0600 file, never from the command line) and
runs the Jupyter application in-process.
"""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import shutil
import sys
import time
from pathlib import Path
from urllib.parse import quote

from starbox.errors import StarboxError
from starbox.settings import Settings

READ_ONLY_DIR = "notebooks-latest"  # inside the work folder: the published lessons
WELCOME = "Welcome.ipynb"
LESSON_COPY = "lessons"
LESSON_FOLDERS = {  # Data Lab's folders, in plain words
    "01_GettingStarted": "Getting started",
    "02_DataAccessOverviews": "Data access overviews",
    "03_ScienceExamples": "Science examples",
    "04_HowTos": "How-tos",
    "05_Contrib": "Contributed notebooks",
    "06_EPO": "For students (ages 12 to 18)",
}
NEW_BESIDE = re.compile(r"\.new-\d{8}(-\d+)?\.ipynb$")  # getlatest's new version beside a changed lesson
IGNORED = shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__", ".git", "*.pyc", ".DS_Store")


# --- where things live -----------------------------------------------------------------------

def appliance_dir(settings: Settings) -> Path:
    return settings.project_root / "appliance" / "jupyter"


def apps_dir(settings: Settings) -> Path:
    return settings.project_root / "voila_apps"


def work_dir(settings: Settings) -> Path:
    return settings.home / "work"


def state_dir(settings: Settings) -> Path:
    """HOME, JUPYTER_CONFIG_DIR and the runtime folder of the Jupyter processes."""
    return settings.home / "jupyter"


def token_file(settings: Settings) -> Path:
    return settings.secrets_dir / f"{settings.local_user}.token"


def password_file(settings: Settings) -> Path:
    return settings.secrets_dir / f"{settings.local_user}.password"


def lab_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.jupyter_port}/lab"


def voila_url(settings: Settings) -> str:
    return f"http://127.0.0.1:{settings.voila_port}/"


def app_url(settings: Settings, notebook: str) -> str:
    return f"http://127.0.0.1:{settings.voila_port}/voila/render/{quote(notebook)}"


def help_lines(settings: Settings) -> list[str]:
    """What `starbox up` prints about this part."""
    return [
        f"JupyterLab: {lab_url(settings)}  (no password: it listens on this computer only)",
        f"  your work folder: {work_dir(settings)}",
        f"Voilà apps: {voila_url(settings)}",
    ]


# --- the lessons ------------------------------------------------------------------------------

def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            os.chmod(os.path.join(dirpath, name), 0o444)
        os.chmod(dirpath, 0o555)


def ensure_lessons(settings: Settings) -> Path:
    """Publish this project's lessons/ when nothing is published yet; return notebooks_latest.

    Only when the `notebooks_latest` symlink is missing: the lessons are copied into
    `notebooks_versions/<stamp>`, made read-only, and the symlink is pointed at the copy
    (atomically, as the publishing code does). A symlink that exists is never touched.
    """
    latest = settings.notebooks_latest
    if latest.is_symlink() or latest.exists():
        return latest
    source = settings.project_root / "lessons"
    stamp = time.strftime("%Y%m%dT%H%M%S") + "-local"
    target = settings.notebooks_versions / stamp
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, ignore=IGNORED, dirs_exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)
    _make_read_only(target)
    tmp = latest.with_name(f".{latest.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    os.replace(tmp, latest)
    return latest


def _copy_missing(source: Path, dest: Path) -> list[Path]:
    """Copy files of `source` that `dest` lacks (writable copies); never overwrite. Returns them."""
    copied = []
    if not source.is_dir():
        return copied
    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        dirnames[:] = [d for d in dirnames if d not in (".ipynb_checkpoints", "__pycache__", ".git")]
        rel = Path(dirpath).relative_to(source)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        os.chmod(dest / rel, 0o755)
        for name in filenames:
            if name.endswith(".pyc") or name == ".DS_Store":
                continue
            target = dest / rel / name
            if target.exists() or target.is_symlink():
                continue
            shutil.copyfile(Path(dirpath) / name, target)
            os.chmod(target, 0o644)
            copied.append(target)
    return copied


def copy_lessons(settings: Settings, dest: Path) -> None:
    """The student's writable copy of the published lessons (Data Lab's `getlatest`).

    Uses `starbox.notebooks.getlatest.getlatest(settings, dest)` (new files copied, untouched ones
    updated, the student's changed files kept with the new version beside them), once per
    published version; without that module, copies the files that are missing with shutil. A broken publication is reported and
    does not stop JupyterLab from starting.
    """
    import importlib

    try:
        module = importlib.import_module("starbox.notebooks.getlatest")
    except ModuleNotFoundError as exc:
        if exc.name != "starbox.notebooks.getlatest":
            raise
        _copy_missing(settings.notebooks_latest, dest)
        return
    try:  # once per published version: nothing to bring over when the copy is of this one
        copied = json.loads((dest / module.MANIFEST).read_text()).get("version")
        if copied == Path(os.path.realpath(settings.notebooks_latest)).name:
            return
    except (OSError, ValueError, AttributeError):
        pass
    try:
        module.getlatest(settings, dest)
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


def _lesson_list(work: Path) -> str:
    """Markdown links to every lesson in the writable copy, by Data Lab folder."""
    root = work / LESSON_COPY
    notebooks = sorted(p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                       and not NEW_BESIDE.search(p.name)) if root.is_dir() else []
    if not notebooks:
        return ("*No lessons are published yet.* When they are, they appear here and in the "
                f"`{LESSON_COPY}/` folder on the left.")
    groups: dict[str, list[Path]] = {}
    for nb in notebooks:
        rel = nb.relative_to(root)
        groups.setdefault(rel.parts[0] if len(rel.parts) > 1 else "", []).append(nb)
    lines = []
    for folder in sorted(groups):
        heading = LESSON_FOLDERS.get(folder, folder.replace("_", " ")) if folder else "Other lessons"
        lines.append(f"### {heading}\n")
        for nb in groups[folder]:
            link = quote(nb.relative_to(work).as_posix())
            lines.append(f"- [{_notebook_title(nb)}]({link})")
        lines.append("")
    return "\n".join(lines).strip()


def write_welcome(settings: Settings) -> Path:
    """Build Welcome.ipynb from the template in appliance/jupyter, with the lesson links filled in."""
    work = work_dir(settings)
    template = json.loads((appliance_dir(settings) / WELCOME).read_text(encoding="utf-8"))
    values = {
        "{{lessons}}": _lesson_list(work),
        "{{voila_url}}": voila_url(settings),
        "{{user}}": settings.local_user,
        "{{work_dir}}": str(work),
        "{{read_only_dir}}": READ_ONLY_DIR,
        "{{lesson_copy}}": LESSON_COPY,
    }
    apps = sorted(p.name for p in apps_dir(settings).glob("*.ipynb"))
    values["{{apps}}"] = "\n".join(
        f"- [{_notebook_title(apps_dir(settings) / a)}]({app_url(settings, a)})" for a in apps) or "*none yet*"
    # What the kernel will report, so that opening the page does not mark it changed.
    template["metadata"]["language_info"] = {
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
        "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3", "version": platform.python_version()}
    for cell in template["cells"]:
        source = cell["source"]
        source = "".join(source) if isinstance(source, list) else source
        for key, value in values.items():
            source = source.replace(key, value)
        cell["source"] = source
    path = work / WELCOME
    if path.exists():
        os.chmod(path, 0o644)
    _write_private(path, json.dumps(template, indent=1, ensure_ascii=False) + "\n")
    os.chmod(path, 0o444)
    return path


def ensure_workspace(settings: Settings) -> Path:
    """The work folder: the lesson copy, the read-only view, the welcome page. Returns it."""
    ensure_lessons(settings)
    work = work_dir(settings)
    work.mkdir(parents=True, exist_ok=True)
    view = work / READ_ONLY_DIR
    if not view.is_symlink():
        if view.exists():
            raise StarboxError(f"{view} should be a link to {settings.notebooks_latest}; "
                               "move it away and start again")
        view.symlink_to(settings.notebooks_latest)
    copy_lessons(settings, work / LESSON_COPY)
    write_welcome(settings)
    for sub in ("home", "config", "runtime"):
        (state_dir(settings) / sub).mkdir(parents=True, exist_ok=True)
    return work


# --- the local account ------------------------------------------------------------------------

def ensure_local_user(settings: Settings, min_days_left: int = 7) -> str:
    """The local user's token for the Jupyter kernels; the account is made here if missing.

    Its password (random) is kept in `password_file(settings)`. The token in `token_file(settings)`
    (0600) is reused while it is valid for at least `min_days_left` more days; otherwise it is
    revoked and a new one issued. Calling this again never disturbs running kernels.
    """
    from starbox import accounts, database, storage_home

    name = settings.local_user
    path = token_file(settings)
    with database.connect_admin(settings) as conn:
        if not conn.execute("SELECT 1 FROM starbox.accounts WHERE username = %s", (name,)).fetchone():
            password = secrets.token_urlsafe(18)
            _write_private(password_file(settings), password + "\n")
            accounts.add(conn, settings, name, password)
        uid = conn.execute("SELECT uid FROM starbox.accounts WHERE username = %s", (name,)).fetchone()[0]
        storage_home.create(settings, name)
        old = path.read_text().strip() if path.exists() else ""
        parsed = accounts.parse_token(old)
        if parsed and accounts.resolve(conn, old) == accounts.User(name, uid):
            fresh = conn.execute(
                "SELECT expires > now() + make_interval(days => %s) FROM starbox.tokens"
                " WHERE secret_sha256 = %s AND username = %s",
                (min_days_left, accounts._sha(parsed[2][3:]), name)).fetchone()
            if fresh and fresh[0]:
                return old
        if old:
            accounts.logout(conn, old)
        token = accounts.issue_token(conn, accounts.User(name, uid))
    _write_private(path, token + "\n")
    return token


# --- the processes ----------------------------------------------------------------------------

def _base_env(settings: Settings) -> list[str]:
    state = state_dir(settings)
    share = appliance_dir(settings) / "share"
    return [
        f"STARBOX_URL={settings.service_url}",
        f"HOME={state / 'home'}",
        f"JUPYTER_CONFIG_DIR={state / 'config'}",
        f"JUPYTER_RUNTIME_DIR={state / 'runtime'}",
        f"JUPYTER_CONFIG_PATH={appliance_dir(settings) / 'config'}",
        f"JUPYTER_PATH={share}",
        "JUPYTER_PLATFORM_DIRS=1",
        "PYTHONUNBUFFERED=1",
    ]


def _launcher(settings: Settings, what: str, args: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "starbox.jupyter", what, "--token-file", str(token_file(settings))]
    for item in _base_env(settings):
        argv += ["--env", item]
    return argv + ["--", *args]


def lab_argv(settings: Settings) -> list[str]:
    args = [
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={settings.jupyter_port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={work_dir(settings)}",
        "--IdentityProvider.token=",
        "--PasswordIdentityProvider.hashed_password=",
        "--ServerApp.contents_manager_class=starbox.jupyter.LessonsContentsManager",
        f"--LabApp.app_settings_dir={appliance_dir(settings) / 'lab-settings'}",
        f"--LabApp.default_url=/lab/tree/{WELCOME}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")
    return _launcher(settings, "lab", args)


def voila_argv(settings: Settings, preheat: bool = True, pool_size: int | None = None,
               root: Path | None = None, template: str | None = None) -> list[str]:
    """Voilà serving `root` (default voila_apps/); pre-heated pools unless `preheat` is False;
    pages on `template` instead of voila.json's (`starbox-lab`: Voilà's own front end)."""
    args = [
        str(root or apps_dir(settings)),
        "--Voila.ip=127.0.0.1",
        f"--Voila.port={settings.voila_port}",
        "--Voila.port_retries=0",
        "--Voila.open_browser=False",
        f"--VoilaConfiguration.preheat_kernel={preheat}",
        f"--StarboxVoila.local_hostnames={','.join(voila_hostnames(settings))}",
    ]
    if pool_size is not None:
        args.append(f"--VoilaConfiguration.default_pool_size={pool_size}")
    if template is not None:
        args.append(f"--VoilaConfiguration.template={template}")
    return _launcher(settings, "voila", args)


def lab_child(settings: Settings):
    from starbox.processes import Child

    return Child("JupyterLab", lab_argv(settings), settings.jupyter_port,
                 f"http://127.0.0.1:{settings.jupyter_port}/api", settings.log_dir / "jupyterlab.log")


def voila_child(settings: Settings, preheat: bool = True, pool_size: int | None = None, name: str = "voila",
                root: Path | None = None, template: str | None = None):
    from starbox.processes import Child

    return Child("Voilà", voila_argv(settings, preheat, pool_size, root, template), settings.voila_port,
                 f"http://127.0.0.1:{settings.voila_port}/starbox/pools", settings.log_dir / f"{name}.log")


def children(settings: Settings) -> list:
    """JupyterLab and Voilà, ready to start: the workspace and the local account are made here."""
    ensure_workspace(settings)
    ensure_local_user(settings)
    return [lab_child(settings), voila_child(settings)]


def pool_status(settings: Settings, port: int | None = None, timeout: float = 5) -> dict:
    """Voilà's pre-heated pools and running kernels:
    {"preheat": bool, "pools": {notebook: {"size", "warm", "target"}}, "kernels": int}."""
    import httpx

    port = port or settings.voila_port
    return httpx.get(f"http://127.0.0.1:{port}/starbox/pools", timeout=timeout).json()


def wait_warm(settings: Settings, port: int | None = None, timeout: float = 120) -> dict:
    """Wait until every app's pool is full of kernels that finished running the app."""
    deadline = time.monotonic() + timeout
    status: dict = {}
    while time.monotonic() < deadline:
        try:
            status = pool_status(settings, port)
        except Exception:  # starting, or restarting
            status = {}
        pools = status.get("pools", {})
        if status and (not status.get("preheat") or (
                pools and all(p["warm"] >= p["target"] for p in pools.values()))):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"Voilà's kernel pools were not warm within {timeout:.0f} s: {status}")


# --- inside the Jupyter processes -------------------------------------------------------------

def _under_read_only(path: str) -> bool:
    parts = [p for p in (path or "").strip("/").split("/") if p]
    return bool(parts) and (parts[0] == READ_ONLY_DIR or parts == [WELCOME])


def _lessons_contents_manager():
    from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
    from tornado.web import HTTPError

    def refuse(path: str):
        if path.strip("/") == WELCOME:
            raise HTTPError(403, f"{WELCOME} is rebuilt each time Starbox starts, so it cannot be changed. "
                                 "Use File > Save Notebook As... to keep a copy.")
        raise HTTPError(403, f"{READ_ONLY_DIR}/ holds the published lessons and is read-only. "
                             f"Your own copies are in {LESSON_COPY}/; or use File > Save Notebook As...")

    class LessonsContentsManager(AsyncLargeFileManager):
        """Jupyter's file manager, with notebooks-latest/ (and the welcome page) read-only."""

        async def get(self, path, content=True, type=None, format=None, **kwargs):
            model = await super().get(path, content=content, type=type, format=format, **kwargs)
            if _under_read_only(path):
                model["writable"] = False
            if model.get("type") == "directory" and isinstance(model.get("content"), list):
                for item in model["content"]:
                    if _under_read_only(item.get("path", "")):
                        item["writable"] = False
            return model

        async def save(self, model, path=""):
            if _under_read_only(path):
                refuse(path)
            return await super().save(model, path)

        async def delete_file(self, path):
            if _under_read_only(path) or path.strip("/") == READ_ONLY_DIR:
                refuse(path)
            return await super().delete_file(path)

        async def rename_file(self, old_path, new_path):
            for p in (old_path, new_path):
                if _under_read_only(p) or p.strip("/") == READ_ONLY_DIR:
                    refuse(p)
            return await super().rename_file(old_path, new_path)

        async def new_untitled(self, path="", type="", ext=""):
            if _under_read_only(path + "/x"):
                refuse(path)
            return await super().new_untitled(path=path, type=type, ext=ext)

        async def create_checkpoint(self, path):
            if _under_read_only(path):
                refuse(path)
            return await super().create_checkpoint(path)

        async def restore_checkpoint(self, checkpoint_id, path):
            if _under_read_only(path):
                refuse(path)
            return await super().restore_checkpoint(checkpoint_id, path)

        async def delete_checkpoint(self, checkpoint_id, path):
            if _under_read_only(path):
                refuse(path)
            return await super().delete_checkpoint(checkpoint_id, path)

    return LessonsContentsManager


# A webpack content hash in a file name (remoteEntry.c8c9eed2cdefdeac.js, 84.09c61a35dce1705f.js):
# such a URL never changes content, so browsers may keep it for good.
_HASHED_NAME = re.compile(r"[.-][0-9a-f]{16,}\.[a-z0-9]+$")
_YEAR = 365 * 24 * 3600
# The files whose content names a build of the pages' front end: Voilà's (voila.js lists its
# chunks) and Starbox's light page (appliance/voila-page).
_FRONT_END_FILES = ("voila.js", "starbox-page.js", "starbox-page.css")
POOL_NICE = 10  # CPU priority of kernels that fill a pool (0 normal, 19 lowest)


def _lower_priority() -> None:  # runs in the kernel process, before it starts Python
    os.nice(POOL_NICE)


def voila_hostnames(settings: Settings) -> list[str]:
    """Host names Voilà answers to besides loopback addresses (DNS rebinding: a page on another
    site that makes its name resolve to 127.0.0.1 sends its own name as Host): localhost, the
    service host and the host of STARBOX_URL, as JupyterLab's local_hostnames."""
    from urllib.parse import urlsplit

    names = ["localhost", settings.service_host, urlsplit(settings.service_url).hostname or ""]
    return sorted({n.lower() for n in names if n and "," not in n})


def host_allowed(host_name: str, local_hostnames: list[str]) -> bool:
    """jupyter_server's check_host rule: loopback addresses, or a name in local_hostnames."""
    import ipaddress

    host = host_name.strip("[]").lower()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in local_hostnames


def _starbox_voila():
    import hashlib
    import inspect

    from jupyter_server.base.handlers import FileFindHandler
    from jupyter_server.utils import url_path_join
    from tornado.web import HTTPError, RequestHandler
    from voila import __version__ as voila_version
    from voila.app import Voila
    from tornado.log import app_log
    from traitlets import Unicode
    from voila.static_file_handler import MultiStaticFileHandler, TemplateStaticFileHandler
    from voila.tornado.handler import TornadoVoilaHandler

    class SafeTemplateStaticFileHandler(TemplateStaticFileHandler):
        """/voila/templates/<template>/static/<path>: anything else (`..%2f..`, no `static`) is
        404; Voilà's own handler fails on it with 500 (an unpacking error or an assert)."""

        def parse_url_path(self, path):
            parts = path.split("/")
            if len(parts) < 3 or parts[1] != "static" or any(p in ("", ".", "..") or "\\" in p for p in parts):
                raise HTTPError(404)
            return super().parse_url_path(path)

    def host_checked(handler_class, app):
        """The handler class refusing a Host that is not local (403), before anything else."""

        class HostChecked(handler_class):
            def prepare(self, *args, **kwargs):
                if not host_allowed(self.request.host_name, app.allowed_hostnames):
                    app_log.warning("Blocked request with non-local 'Host' %s", self.request.host)
                    # A plain answer (Voilà's error pages come out empty); tornado runs no
                    # handler method once prepare finished the request.
                    self.clear()
                    self.set_status(403)
                    self.set_header("Content-Type", "text/plain; charset=utf-8")
                    self.finish(f"Blocked request with non-local 'Host' {self.request.host}: open Voila "
                                f"as http://localhost:<port>/ or http://127.0.0.1:<port>/\n")
                    return None
                return super().prepare(*args, **kwargs)

        HostChecked.__name__ = HostChecked.__qualname__ = f"HostChecked{handler_class.__name__}"
        return HostChecked

    class ExtensionsHandler(FileFindHandler):
        """Voilà's /voila/labextensions, with the hashed files cached by the browser.

        Voilà serves every extension file with `no-cache`, so each page load asked again for the
        ~15 widget files (a round trip each, all before the widgets can load). A file whose name
        or `?v=` carries its content hash never changes under that URL; the rest (style.js,
        package.json) still revalidate.
        """

        def set_headers(self):
            super().set_headers()
            if _HASHED_NAME.search(self.request.path) or "v" in self.request.arguments:
                self.set_header("Cache-Control", f"public, max-age={_YEAR}, immutable")

    class VersionedStaticHandler(MultiStaticFileHandler):
        """The pages' front ends (Starbox's starbox-page.js; voila.js and its ~150 chunks) under
        /starbox/voila-static/<build>/.

        Voilà's /voila/static sends no cache headers, so whether a second page reuses its 3 MB of
        JavaScript depended on the browser's guess from the files' age (a fresh install: a
        round trip per chunk). The chunk names carry no hash, so the build (Voilà's version and
        a hash of the _FRONT_END_FILES) goes in the path and the files are cached
        for good: an upgrade changes the path.
        """

        build = ""

        async def get(self, build, path, include_body=True):
            if build != self.build:
                raise HTTPError(404)
            await super().get(path, include_body)

        async def head(self, build, path):
            await self.get(build, path, include_body=False)

        def get_cache_time(self, path, modified, mime_type):
            return _YEAR

    class PageHandler(TornadoVoilaHandler):
        """Voilà's app page, which also sets the `_xsrf` cookie.

        When a page closes, Voilà's JavaScript asks the server to shut its kernel down and sends
        the `_xsrf` cookie with that request; Voilà 0.5 never sets the cookie, so the request is
        refused (403) and every visit leaves a kernel running until the culler finds it
        (voila-dashboards/voila#1458). Reading `xsrf_token` sets the cookie.
        """

        async def prepare(self):
            result = super().prepare()
            if inspect.isawaitable(result):
                await result
            self.xsrf_token  # noqa: B018 - the property sets the cookie

    class PoolHandler(RequestHandler):
        """How warm Voilà's pre-heated kernels are (for `wait_warm`, the tests and the bench)."""

        def initialize(self, app):
            self.app = app

        def get(self):
            km = self.app.kernel_manager
            conf = self.app.voila_configuration
            pools = {}
            for name, tasks in getattr(km, "_pools", {}).items():
                warm = 0
                for task in tasks:
                    if task.done() and not task.cancelled() and task.exception() is None:
                        render = task.result().get("task")
                        warm += bool(render is not None and render.done())
                target = km.kernel_pools_config.get(name, km.kernel_pools_config.get("default", {})) \
                    .get("pool_size", conf.default_pool_size)
                pools[name] = {"size": len(tasks), "warm": warm, "target": target}
            self.set_header("Cache-Control", "no-store")
            self.finish({"preheat": bool(conf.preheat_kernel), "pools": pools,
                         "kernels": len(km.list_kernel_ids())})

    class StarboxVoila(Voila):
        """Voilà with /starbox/pools, pages that can shut their kernel down, static files the
        browser keeps, pool kernels that yield the CPU to pages, and its kernels shut down when
        it stops."""

        # Host names answered besides loopback addresses (comma-separated; voila_hostnames).
        local_hostnames = Unicode("localhost", config=True)

        @property
        def allowed_hostnames(self) -> list[str]:
            return [n.strip().lower() for n in self.local_hostnames.split(",") if n.strip()]

        def initialize(self, argv=None):
            super().initialize(argv)
            conf = self.voila_configuration
            digest = hashlib.sha256()
            for name in _FRONT_END_FILES:
                found = next((Path(p) / name for p in self.static_paths if (Path(p) / name).is_file()), None)
                digest.update(found.read_bytes() if found else b"-")
            VersionedStaticHandler.build = f"{voila_version}-{digest.hexdigest()[:12]}"
            user_hook = conf.page_config_hook

            def page_config_hook(page_config, **kwargs):
                if user_hook is not None:
                    page_config = user_hook(page_config, **kwargs)
                # voila.js and the chunks it loads (its public path) come from the versioned URL.
                page_config["fullStaticUrl"] = url_path_join(
                    kwargs["base_url"], "starbox/voila-static", VersionedStaticHandler.build)
                # No LaTeX typesetter: otherwise every page loads and starts MathJax 3 (~1 MB of
                # JavaScript, to typeset an empty element) while its widgets load. With no MathJax
                # URL, Voilà's front end picks its MathJax 2 plugin, which then declines to start
                # (an error in the browser's console), so nothing is loaded. The apps have no
                # formulas (tests/test_voila_apps.py checks).
                page_config["fullMathjaxUrl"] = page_config["mathjaxConfig"] = ""
                return page_config

            conf.page_config_hook = page_config_hook

        def init_settings(self):
            settings = super().init_settings()
            km = self.kernel_manager
            if hasattr(km, "fill_if_needed") and hasattr(km, "get_rendered_notebook"):
                self._yield_cpu_while_filling(km)
            return settings

        def _yield_cpu_while_filling(self, km):
            """A kernel that refills a pool starts (imports, runs the app, draws) while the page
            that took the last one loads: on a small machine they share the CPU and the page
            waits. So pool kernels start at a lower priority (nice), and get the normal one
            back when a page takes them, where the system allows that (root, or CAP_SYS_NICE)."""
            fill, take = km.fill_if_needed, km.get_rendered_notebook

            def fill_if_needed(*args, **kwargs):
                kwargs.setdefault("preexec_fn", _lower_priority)
                return fill(*args, **kwargs)

            async def get_rendered_notebook(*args, **kwargs):
                render_task, rendered_cache, kernel_id = await take(*args, **kwargs)
                try:
                    pid = km.get_kernel(kernel_id).provisioner.pid
                    os.setpriority(os.PRIO_PROCESS, pid, 0)
                except (AttributeError, KeyError, TypeError, OSError):
                    pass  # not allowed: it keeps the pool's priority
                return render_task, rendered_cache, kernel_id

            km.fill_if_needed, km.get_rendered_notebook = fill_if_needed, get_rendered_notebook

        def init_handlers(self):
            handlers = []
            for h in super().init_handlers():
                if h[1] is TornadoVoilaHandler:
                    h = (h[0], PageHandler, *h[2:])
                elif h[1] is FileFindHandler and h[0].endswith("/voila/labextensions/(.*)"):
                    h = (h[0], ExtensionsHandler, *h[2:])
                elif h[1] is TemplateStaticFileHandler:
                    h = (h[0], SafeTemplateStaticFileHandler, *h[2:])
                handlers.append(h)
            handlers = [(url_path_join(self.server_url, r"/starbox/pools"), PoolHandler, {"app": self}),
                        (url_path_join(self.server_url, r"/starbox/voila-static/([^/]+)/(.*)"),
                         VersionedStaticHandler, {"paths": self.static_paths, "default_filename": "index.html"}),
                        *handlers]
            # Every handler checks Host, as JupyterLab does (Voilà itself allows remote access).
            return [(h[0], host_checked(h[1], self), *h[2:]) for h in handlers]

        def stop(self):
            km = getattr(self, "kernel_manager", None)
            if km is not None and getattr(self, "ioloop", None) is not None:
                try:
                    self.ioloop.run_sync(lambda: km.shutdown_all(now=True), timeout=10)
                except Exception as exc:  # stopping anyway; the kernels exit with their parent
                    self.log.warning("kernels not shut down cleanly: %s", exc)
            super().stop()

    return StarboxVoila


def __getattr__(name: str):
    if name == "LessonsContentsManager":
        cls = _lessons_contents_manager()
        cls.__qualname__ = name
        globals()[name] = cls
        return cls
    raise AttributeError(name)


def launch(argv: list[str]) -> None:
    """`python -m starbox.jupyter lab|voila --token-file F --env K=V ... -- <Jupyter arguments>`."""
    what, rest = argv[0], argv[1:]
    split = rest.index("--") if "--" in rest else len(rest)
    opts, app_args = rest[:split], rest[split + 1:]
    env: dict[str, str] = {}
    i = 0
    while i < len(opts):
        if opts[i] == "--env":
            key, _, value = opts[i + 1].partition("=")
            env[key] = value
        elif opts[i] == "--token-file":
            try:
                env["STARBOX_TOKEN"] = Path(opts[i + 1]).read_text().strip()
            except OSError:
                pass  # anonymous: the catalogs still work
        i += 2
    os.environ.update(env)
    for key in ("HOME", "JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR"):
        if key in env:
            Path(env[key]).mkdir(parents=True, exist_ok=True)
    if what == "lab":
        from jupyterlab.labapp import LabApp

        LabApp.launch_instance(argv=app_args)
    elif what == "voila":
        _starbox_voila().launch_instance(argv=app_args)
    else:
        raise SystemExit(f"unknown program {what!r}: lab or voila")


if __name__ == "__main__":
    launch(sys.argv[1:])
