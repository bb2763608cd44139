"""Each account's JupyterLab, as its own Unix user (JupyterHub's LocalProcessSpawner).

Before the server starts (`start`, in the hub, as root): the account's Unix user is made if
missing (unix.py), the share is refreshed (share.py), the box must have memory to spare, a new
Starbox token is issued for this server, and the home is prepared *as the user* (seed.py). The
server is the lab environment's `jupyterhub-singleuser` (root-owned, read-only to users, no user
configuration honoured), with Starbox's contents manager (notebooks-latest/ and the welcome page
read-only, storage/ the user's Starbox storage), the registered kernels only (kernels.py; the
spawn form picks the default one and a size), kernels over IPC, idle kernels culled (busy ones
never) and the server stopping itself after the idle time of its kind of account. However it
ends, its token is revoked (clear_state).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import pwd
import subprocess
import threading
import time

import psutil
from jupyterhub.spawner import LocalProcessSpawner, SpawnException, set_user_setuid
from markupsafe import escape
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from tornado.web import HTTPError

from starbox import accounts, database
from starbox import settings as settings_mod

from ..paths import WELCOME
from ..workspace import WelcomeLinks, welcome_text
from . import kernels, share, unix
from .paths import activity_interval, lessons_link

_gates: dict[int, asyncio.Semaphore] = {}


def _boot_gate(size: int) -> asyncio.Semaphore:
    """The hub's one semaphore of labs booting at once (made on the hub's loop, at first use)."""
    return _gates.setdefault(max(size, 1), asyncio.Semaphore(max(size, 1)))


SEED_TIMEOUT = 120  # s; a first copy of the lessons takes a few seconds
SIZES = {"standard": 1, "large": 2}  # memory: times hub_mem_limit_mb (large: not for class accounts)


class StarboxSpawner(LocalProcessSpawner):
    """LocalProcessSpawner for Starbox accounts: Unix user `<prefix><account>`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._settings = settings_mod.get()
        self.starbox_token = ""
        self._standing: accounts.Standing | None = None  # read with the token, for the welcome page

    # --- who the server runs as -------------------------------------------------------------
    def system_user(self) -> str:
        return unix.system_name(self._settings, self.user.name)

    def make_preexec_fn(self, name):
        return set_user_setuid(self.system_user())

    def _home(self) -> str:
        return pwd.getpwnam(self.system_user()).pw_dir

    def user_env(self, env):
        entry = pwd.getpwnam(self.system_user())
        env.update(USER=entry.pw_name, LOGNAME=entry.pw_name, HOME=entry.pw_dir, SHELL=entry.pw_shell)
        return env

    def get_env(self):
        env = super().get_env()
        s, home = self._settings, env["HOME"]
        env.update(
            PATH=f"{s.hub_env / 'bin'}:/usr/local/bin:/usr/bin:/bin",
            STARBOX_URL=s.service_url,
            STARBOX_TOKEN=self.starbox_token,
            STARBOX_HOME=f"{home}/.starbox",
            STARBOX_LESSON_COPY=f"{home}/lessons",
            JUPYTER_CONFIG_PATH=str(s.hub_share / "config"),
            JUPYTER_PATH=str(s.hub_share),  # the registered kernels (kernels.py)
            JUPYTER_PLATFORM_DIRS="1",
            PYTHONUNBUFFERED="1",
            JUPYTERHUB_ACTIVITY_INTERVAL=str(activity_interval(s)),
        )
        return env

    def get_args(self):
        s = self._settings
        idle = s.hub_class_idle_s if self._class_name() else s.hub_idle_s
        return [
            *super().get_args(),
            "--ServerApp.contents_manager_class=starbox.jupyter.contents.LessonsContentsManager",
            f"--LabApp.app_settings_dir={s.hub_share / 'lab-settings'}",
            f"--ServerApp.shutdown_no_activity_timeout={idle}",
            f"--MappingKernelManager.cull_idle_timeout={s.hub_kernel_idle_s}",
            "--MappingKernelManager.cull_interval=60",
            "--MappingKernelManager.cull_connected=True",
            "--MappingKernelManager.cull_busy=False",
            "--KernelManager.transport=ipc",
            "--HubOAuth.cache_max_age=20",  # a revoked share ends within 20 s, not 5 minutes
            f"--SQLiteYStore.db_path={self._home()}/.starbox/ystore.db",  # collaboration's history
            f"--MappingKernelManager.default_kernel_name={self._choice()[0]}",
            *(f"--KernelSpecManager.allowed_kernelspecs={name}" for name in kernels.names(s)),
        ]

    def _class_name(self) -> str | None:
        return next((g.name for g in self.user.groups), None)

    # --- the spawn form: a kernel for new notebooks and a size; only what is registered --------
    def _sizes(self) -> list[str]:
        return ["standard"] if self._class_name() else list(SIZES)

    async def get_options_form(self):
        """Researchers choose; a class account gets the defaults straight away (no form)."""
        if self._class_name():
            return ""
        s = self._settings
        kernel_options = "".join(
            f'<option value="{escape(k.name)}">{escape(k.display_name)}</option>' for k in kernels.listing(s)
        )
        size_options = "".join(
            f'<option value="{n}">{n}: {SIZES[n] * s.hub_mem_limit_mb} MB of memory</option>' for n in self._sizes()
        )
        return (
            '<label for="sb-kernel">Kernel for new notebooks</label>'
            f'<select class="form-control" name="kernel" id="sb-kernel">{kernel_options}</select>'
            '<label for="sb-size">Size</label>'
            f'<select class="form-control" name="size" id="sb-size">{size_options}</select>'
            "<p>Every registered kernel is in the lab's launcher too.</p>"
        )

    def options_from_form(self, formdata):
        return self._validated({k: (v[0] if v else "") for k, v in formdata.items() if k in ("kernel", "size")})

    def _validated(self, options: dict) -> dict:
        """{kernel, size}, each one of those offered; anything else is a 400 naming the choices."""
        kernel = options.get("kernel") or kernels.BUILTIN
        size = options.get("size") or "standard"
        known = kernels.names(self._settings)
        if kernel not in known:
            raise HTTPError(400, f"No kernel is called {kernel!r} here; the kernels are: {', '.join(known)}")
        if size not in self._sizes():
            raise HTTPError(400, f"{size!r} is not a size you can choose; the sizes are: {', '.join(self._sizes())}")
        return {"kernel": kernel, "size": size}

    def _choice(self) -> tuple[str, str]:
        chosen = self._validated(self.user_options or {})
        return chosen["kernel"], chosen["size"]

    # --- state kept across hub restarts: the pid (LocalProcessSpawner) and this server's token --
    def load_state(self, state):
        super().load_state(state)
        self.starbox_token = state.get("starbox_token", "")

    def get_state(self):
        state = super().get_state()
        if self.starbox_token:
            state["starbox_token"] = self.starbox_token
        return state

    def clear_state(self):
        """The server is gone (stopped, culled, stopped itself, failed to start): its token dies."""
        super().clear_state()
        token, self.starbox_token = self.starbox_token, ""
        if token:  # called from the event loop too: the database work goes to a thread
            threading.Thread(target=self._revoke_token, args=(token,), daemon=True).start()

    # --- start and stop -----------------------------------------------------------------------
    def _admit(self) -> None:
        free_mb = psutil.virtual_memory().available >> 20
        if free_mb < self._settings.hub_min_free_mb:
            raise SpawnException(
                f"The box is full right now ({free_mb} MB of memory free): try again in a few minutes, "
                "or ask your instructor to stop idle labs.",
                reason="capacity",
            )

    def _issue_token(self) -> str:
        with database.connect_admin(self._settings) as conn:
            uid = accounts.uid_of(conn, self.user.name)
            if uid is None:
                raise SpawnException("Your Starbox account no longer exists.", reason="account")
            self._standing = accounts.standing(conn, self.user.name)
            return accounts.issue_token(conn, accounts.User(self.user.name, uid))

    def _account_note(self) -> str:
        """For the welcome page: when a class account ends (classes are short: say it plainly)."""
        standing = self._standing
        if not standing or not standing.class_name or not standing.expires:
            return ""
        end = standing.expires.astimezone(dt.timezone.utc)
        return (
            f" This account belongs to the class **{standing.class_name}** and ends on "
            f"**{end:%A %d %B %Y at %H:%M} UTC**: download anything you want to keep before then."
        )

    def _revoke_token(self, token: str) -> None:
        try:
            with database.connect_admin(self._settings) as conn:
                accounts.logout(conn, token)
        except Exception:  # the database down: the token still ends with its lifetime
            self.log.exception("could not revoke the token of %s's server", self.user.name)

    def _seed(self, entry) -> None:
        s = self._settings
        version = share.sync(s)
        links = WelcomeLinks("/apps/", lambda nb: f"/apps/voila/render/{nb}", "/docs/")
        lessons = lessons_link(s)
        welcome = welcome_text(s, lessons, self.user.name, "your home folder", links, self._account_note())
        request = {
            "account": self.user.name,
            "token": self.starbox_token,
            "service_url": s.service_url,
            "welcome": welcome,
            "lessons": str(lessons) if version else None,
        }
        env = {
            "HOME": entry.pw_dir,
            "USER": entry.pw_name,
            "PATH": f"{s.hub_env / 'bin'}:/usr/bin:/bin",
            "STARBOX_HOME": f"{entry.pw_dir}/.starbox",
            "STARBOX_URL": s.service_url,
        }
        done = subprocess.run(
            [str(s.hub_env / "bin" / "python"), "-m", "starbox.jupyter.hub.seed"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            env=env,
            cwd=entry.pw_dir,
            preexec_fn=set_user_setuid(entry.pw_name),
            timeout=SEED_TIMEOUT,
        )
        if done.returncode != 0:
            self.log.error("preparing %s's home failed: %s", self.user.name, done.stderr[-2000:])
            raise SpawnException(
                f"Your home folder could not be prepared ({WELCOME} and the lessons); "
                "try again, and tell your instructor if it happens again.",
                reason="home",
            )

    def _prepare(self) -> None:
        self._admit()
        entry = unix.ensure_user(self._settings, self.user.name)
        self.starbox_token = self._issue_token()
        try:
            self._seed(entry)
        except BaseException:
            self._revoke_token(self.starbox_token)
            self.starbox_token = ""
            raise

    async def start(self):
        try:  # user_options from the API (no form) are checked here
            _, size = self._choice()
        except HTTPError as exc:
            raise SpawnException(exc.log_message or "bad options", reason="options") from None
        self.mem_limit = (SIZES[size] * self._settings.hub_mem_limit_mb) << 20  # MEM_LIMIT in the lab
        # A class logging in at once: labs boot hub_labs_booting at a time, each until it
        # answers, and the others wait their turn (within the spawn timeout) on the start page.
        async with _boot_gate(self._settings.hub_labs_booting):
            await asyncio.to_thread(self._prepare)
            ip, port = await super().start()
            await self._answering(ip, port)
        return ip, port

    async def _answering(self, ip: str, port: int) -> None:
        """Until the lab answers HTTP, or its process ended (the hub then reports why)."""
        url = f"http://{ip or '127.0.0.1'}:{port}{self.server.base_url}api"
        client = AsyncHTTPClient()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and await self.poll() is None:
            try:
                await client.fetch(url, request_timeout=5, raise_error=False)
                return
            except (OSError, HTTPClientError):
                await asyncio.sleep(0.2)
