"""The `starbox hub` commands' side of the hub's REST API, with the `starbox-admin` service's
token (a least-privilege role, config.py)."""

from __future__ import annotations

import httpx

from starbox import keys
from starbox.errors import StarboxError
from starbox.settings import Settings

from .paths import api_url


def client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        base_url=api_url(settings),
        headers={"Authorization": f"token {keys.hub_admin_token(settings)}"},
        timeout=30,
    )


def _call(settings: Settings, method: str, path: str, **kwargs) -> httpx.Response:
    try:
        with client(settings) as c:
            answer = c.request(method, path, **kwargs)
    except httpx.ConnectError:
        raise StarboxError("the hub is not running: start it with `starbox up --shared`") from None
    if answer.status_code == 404:
        raise StarboxError(f"the hub knows no such user ({path.split('/')[2]})")
    if answer.status_code >= 400:
        raise StarboxError(f"the hub refused: {answer.status_code} {answer.text[:200]}")
    return answer


def users(settings: Settings) -> list[dict]:
    """Every hub user: name, groups, last activity, and whether a server runs or is starting."""
    answer = _call(settings, "GET", "/users")
    body = answer.json()
    return body["items"] if isinstance(body, dict) else body


def stop(settings: Settings, name: str) -> str:
    """Stop the user's lab: 'stopped', 'stopping' (the hub finishes it) or 'not running'."""
    user = _call(settings, "GET", f"/users/{name}").json()
    if not user.get("servers"):
        return "not running"
    answer = _call(settings, "DELETE", f"/users/{name}/server")
    return "stopped" if answer.status_code == 204 else "stopping"
