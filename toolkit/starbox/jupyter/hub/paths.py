"""Where the hub keeps things: its private state (root only), the public share every user may
read, and the URLs of the public port."""

from __future__ import annotations

import socket
from pathlib import Path

from starbox.settings import Settings


def hub_dir(settings: Settings) -> Path:
    """The hub's database, cookie secret, proxy token and TLS files: root only (0700)."""
    return settings.home / "hub"


def config_file(settings: Settings) -> Path:
    return settings.project_root / "appliance" / "hub" / "jupyterhub_config.py"


def proxy_command(settings: Settings) -> Path:
    return settings.project_root / "appliance" / "hub-proxy" / "node_modules" / ".bin" / "configurable-http-proxy"


def activity_interval(settings: Settings) -> int:
    """How often (s) labs report activity and the hub reads the proxy's: often enough for the
    shortest idle timeout (JupyterHub's 300 s would let a 5-minute timeout cull a working lab)."""
    return max(5, min(300, min(settings.hub_idle_s, settings.hub_class_idle_s) // 6))


def datalab_env(settings: Settings) -> Path:
    """The "Data Lab client" kernel's environment (built by appliance/install.sh --hub)."""
    return settings.hub_env.parent / "kernels" / "datalab"


def lessons_link(settings: Settings) -> Path:
    """The published lessons as hub users see them: a root-owned copy in the share."""
    return settings.hub_share / "notebooks-latest"


def public_host(settings: Settings) -> str:
    """The name to give people: the host name when the hub listens everywhere."""
    if settings.hub_address in ("0.0.0.0", "::", ""):
        return socket.gethostname()
    return settings.hub_address


def public_url(settings: Settings) -> str:
    host = public_host(settings)
    if ":" in host:
        host = f"[{host}]"
    return f"https://{host}:{settings.hub_port}"


def local_url(settings: Settings) -> str:
    """The public port as this machine reaches it (tests, the CLI)."""
    return f"https://127.0.0.1:{settings.hub_port}"


def api_url(settings: Settings) -> str:
    """The hub's REST API, on loopback."""
    return f"http://127.0.0.1:{settings.hub_api_port}/hub/api"
