"""The hub as one of `starbox up --shared`'s children (JupyterHub starts its proxy itself)."""

from __future__ import annotations

import sys
from pathlib import Path

from starbox.processes import Child
from starbox.settings import Settings

from .paths import config_file, hub_dir, local_url, public_url


def hub_child(settings: Settings) -> Child:
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
