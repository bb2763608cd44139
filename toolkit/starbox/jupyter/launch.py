"""Starting JupyterLab and Voilà: their command lines, the `Child` processes `starbox up` runs,
and `launch`, what `python -m starbox.jupyter` runs inside each process."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from starbox import keys
from starbox.notebooks import getlatest
from starbox.processes import Child
from starbox.settings import Settings

from . import pools
from .account import ensure_local_user
from .paths import (
    LESSON_COPY,
    WELCOME,
    appliance_dir,
    apps_dir,
    state_dir,
    voila_base,
    voila_hostnames,
    voila_url,
    work_dir,
)
from .workspace import ensure_workspace


def _base_env(settings: Settings) -> list[str]:
    state = state_dir(settings)
    share = appliance_dir(settings) / "share"
    return [
        f"STARBOX_URL={settings.service_url}",
        f"{getlatest.LESSON_COPY_ENV}={work_dir(settings) / LESSON_COPY}",
        f"HOME={state / 'home'}",
        f"JUPYTER_CONFIG_DIR={state / 'config'}",
        f"JUPYTER_RUNTIME_DIR={state / 'runtime'}",
        f"JUPYTER_CONFIG_PATH={appliance_dir(settings) / 'config'}",
        f"JUPYTER_PATH={share}",
        "JUPYTER_PLATFORM_DIRS=1",
        "PYTHONUNBUFFERED=1",
    ]


def _launcher(settings: Settings, what: str, args: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "starbox.jupyter", what, "--token-file", str(keys.local_token_file(settings))]
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
        "--ServerApp.contents_manager_class=starbox.jupyter.contents.LessonsContentsManager",
        f"--LabApp.app_settings_dir={appliance_dir(settings) / 'lab-settings'}",
        f"--LabApp.default_url=/lab/tree/{WELCOME}",
        f"--SQLiteYStore.db_path={state_dir(settings) / 'ystore.db'}",  # collaboration's history
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--ServerApp.allow_root=True")
    return _launcher(settings, "lab", args)


def voila_argv(
    settings: Settings,
    preheat: bool = True,
    pool_size: int | None = None,
    root: Path | None = None,
    template: str | None = None,
) -> list[str]:
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
        f"--StarboxVoila.pool_plan={pools.plan_path(settings)}",
        f"--Voila.base_url={voila_base(settings)}",
    ]
    if pool_size is not None:
        args.append(f"--VoilaConfiguration.default_pool_size={pool_size}")
    if template is not None:
        args.append(f"--VoilaConfiguration.template={template}")
    return _launcher(settings, "voila", args)


def lab_child(settings: Settings):
    return Child(
        "JupyterLab",
        lab_argv(settings),
        settings.jupyter_port,
        f"http://127.0.0.1:{settings.jupyter_port}/api",
        settings.log_dir / "jupyterlab.log",
    )


def voila_child(
    settings: Settings,
    preheat: bool = True,
    pool_size: int | None = None,
    name: str = "voila",
    root: Path | None = None,
    template: str | None = None,
):
    return Child(
        "Voilà",
        voila_argv(settings, preheat, pool_size, root, template),
        settings.voila_port,
        f"{voila_url(settings)}starbox/pools",
        settings.log_dir / f"{name}.log",
    )


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
    return httpx.get(f"http://127.0.0.1:{port}{voila_base(settings)}starbox/pools", timeout=timeout).json()


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
        if status and (not status.get("preheat") or (pools and all(p["warm"] >= p["target"] for p in pools.values()))):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"Voilà's kernel pools were not warm within {timeout:.0f} s: {status}")


def launch(argv: list[str]) -> None:
    """`python -m starbox.jupyter lab|voila --token-file F --env K=V ... -- <Jupyter arguments>`."""
    what, rest = argv[0], argv[1:]
    split = rest.index("--") if "--" in rest else len(rest)
    opts, app_args = rest[:split], rest[split + 1 :]
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
        from .voila import StarboxVoila  # jupyter_server and Voilà load only in this process

        StarboxVoila.launch_instance(argv=app_args)
    else:
        raise SystemExit(f"unknown program {what!r}: lab or voila")
