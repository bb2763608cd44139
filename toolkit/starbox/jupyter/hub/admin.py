"""The `starbox hub` commands' side of the hub's REST API, with the `starbox-admin` service's
token (a least-privilege role, config.py)."""

from __future__ import annotations

import time

import httpx

from starbox import classes, database, keys
from starbox.errors import StarboxError
from starbox.settings import Settings

from .paths import api_url

# prewarm: how long one class's labs may take to start, all told (s), and how often to look
PREWARM_TIMEOUT = 1800
POLL_S = 1.0


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


def _ensure_hub_user(c: httpx.Client, name: str, group: str) -> None:
    """The hub learns of an account at its first login; prewarm introduces it, in its class's
    group (the spawner gives a class account its class's idle time and no spawn form)."""
    if c.get(f"/users/{name}").status_code == 404:
        c.post(f"/users/{name}").raise_for_status()
    if c.get(f"/groups/{group}").status_code == 404:
        c.post(f"/groups/{group}").raise_for_status()
    c.post(f"/groups/{group}/users", json={"users": [name]}).raise_for_status()


def _server(c: httpx.Client, name: str) -> dict | None:
    return (c.get(f"/users/{name}").json().get("servers") or {}).get("")


def prewarm(settings: Settings, class_name: str, log=print) -> dict[str, str]:
    """Start the labs of a class before it begins, at most hub_spawn_limit at a time: each
    member's outcome, 'ready' or why not. Labs stop again after the class's idle time."""
    with database.connect_admin(settings) as conn:
        names = classes.members(conn, class_name)
    if not names:
        raise StarboxError(f"no class named {class_name!r} (see `starbox accounts class list`)")
    outcome: dict[str, str] = {}
    waiting = list(names)
    pending: set[str] = set()
    deadline = time.monotonic() + PREWARM_TIMEOUT
    try:
        with client(settings) as c:
            for name in names:
                _ensure_hub_user(c, name, class_name)
            while (waiting or pending) and time.monotonic() < deadline:
                while waiting and len(pending) < settings.hub_spawn_limit:
                    name = waiting.pop(0)
                    answer = c.post(f"/users/{name}/server")
                    if answer.status_code in (201, 202):
                        pending.add(name)
                    elif answer.status_code == 400 and "already running" in answer.text:
                        outcome[name] = "ready"
                    elif answer.status_code == 429:  # the hub's own spawn limit: later
                        waiting.append(name)
                        break
                    else:
                        outcome[name] = f"refused: {answer.status_code} {answer.text[:200]}"
                for name in sorted(pending):
                    server = _server(c, name)
                    if server and server.get("ready"):
                        outcome[name] = "ready"
                    elif not server or not server.get("pending"):
                        outcome[name] = "failed to start: see jupyterhub.log"
                    else:
                        continue
                    pending.discard(name)
                    log(f"{name}: {outcome[name]}")
                time.sleep(POLL_S)
    except httpx.ConnectError:
        raise StarboxError("the hub is not running: start it with `starbox up --shared`") from None
    for name in [*waiting, *pending]:
        outcome[name] = f"not ready after {PREWARM_TIMEOUT} s"
    return {name: outcome[name] for name in names}


def stop_all(settings: Settings, timeout: float = 60) -> int:
    """Stop every running lab (`starbox down` in shared mode: their tokens die with them); returns
    how many were stopped. A hub that does not answer has nothing to stop."""
    deadline = time.monotonic() + timeout
    try:
        with client(settings) as c:
            body = c.get("/users", params={"state": "active"}).json()
            running = [u["name"] for u in (body["items"] if isinstance(body, dict) else body) if u.get("servers")]
            for name in running:
                c.delete(f"/users/{name}/server")
            while time.monotonic() < deadline:
                if not any(_server(c, name) for name in running):
                    break
                time.sleep(POLL_S)
    except (httpx.HTTPError, ValueError):
        return 0
    return len(running)
