"""The service's paths in the hub's proxy when the service listens on its unix socket (shared
mode): JupyterHub's `extra_routes` takes only http targets, so these are put straight into
configurable-http-proxy through its API, and put back whenever they are missing (the hub starts
a new proxy when its proxy dies). The hub leaves routes it did not make alone."""

from __future__ import annotations

import httpx

from starbox import keys
from starbox.settings import Settings


def proxy_client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{settings.hub_proxy_api_port}",
        headers={"Authorization": f"token {keys.hub_proxy_token(settings)}"},
        timeout=10,
    )


def keep(settings: Settings, proxy: httpx.Client) -> list[str]:
    """Add or correct the service's routes on the unix socket; returns the paths changed."""
    from .config import SERVICE_PATHS, service_target

    target = service_target(settings)
    if not target.startswith("http+unix:"):
        return []  # they are the hub's extra_routes (config.py)
    have = {path.rstrip("/"): route.get("target") for path, route in proxy.get("/api/routes").json().items()}
    changed = []
    for path in SERVICE_PATHS:
        if have.get(path.rstrip("/")) != target:
            proxy.post(f"/api/routes{path}", json={"target": target}).raise_for_status()
            changed.append(path)
    return changed
