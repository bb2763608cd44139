"""The hub as one of `starbox up --shared`'s children (JupyterHub starts its proxy itself)."""

from __future__ import annotations

import sys
from pathlib import Path

from starbox.errors import StarboxError
from starbox.processes import Child
from starbox.settings import Settings

from ..account import ensure_local_user
from ..launch import voila_child
from ..workspace import ensure_lessons
from .paths import config_file, hub_dir, local_url, proxy_command, public_url


def shared_children(settings: Settings) -> list[Child]:
    """Voilà and the hub, once the lessons are published (a first start publishes them, as in
    personal mode: every lab's notebooks-latest/ and lessons/ are copies of them)."""
    hub = hub_child(settings)
    ensure_local_user(settings)  # Voilà's kernels run as it
    ensure_lessons(settings)
    return [voila_child(settings), hub]


def hub_child(settings: Settings) -> Child:
    missing = [
        p for p in (proxy_command(settings), settings.hub_env / "bin" / "jupyterhub-singleuser") if not p.exists()
    ]
    if missing:
        raise StarboxError(f"shared mode is not installed ({missing[0]} is missing): run appliance/install.sh --hub")
    jupyterhub = Path(sys.executable).with_name("jupyterhub")
    hub_dir(settings).mkdir(parents=True, exist_ok=True, mode=0o700)
    return Child(
        "JupyterHub",
        [str(jupyterhub), "-f", str(config_file(settings))],
        settings.hub_api_port,
        f"http://127.0.0.1:{settings.hub_api_port}/hub/api/",
        settings.log_dir / "jupyterhub.log",
        cwd=hub_dir(settings),
    )


def help_lines(settings: Settings) -> list[str]:
    return [
        f"JupyterHub: {public_url(settings)}/  (Starbox accounts log in; on this machine {local_url(settings)}/)",
        "  students' browsers trust it after importing the box's CA: starbox hub ca > starbox-ca.pem",
        f"Voilà apps: {public_url(settings)}/apps/  (no login)",
    ]
