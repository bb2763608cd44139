"""The hub service `expiry`: every EVERY_S seconds, through the hub's API, it stops
* the servers of accounts that may no longer act (disabled, their class ended, removed). With the
  logins refused (authenticator.py) and their Starbox tokens refused by the service
  (accounts.ACTIVE), that ends an account's access within a minute of its end;
* class accounts' labs idle for hub_class_idle_s (the idle-culler service stops everyone's after
  hub_idle_s; one culler has one timeout). A lab whose kernels are working is never idle
  (starbox.jupyter.busy).
It also keeps the service's routes in the proxy when they go to the service's unix socket
(routes.py). Runs as a JupyterHub-managed service with its own token (JUPYTERHUB_API_TOKEN) and a role that
may only read users and stop servers."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time

import httpx
import psycopg

from starbox import accounts, database
from starbox import settings as settings_mod

from . import routes, signals

EVERY_S = 15
log = logging.getLogger("starbox.hub.expiry")


def hub_users(client: httpx.Client) -> list[dict]:
    """Every hub user with their servers (the API pages its answer)."""
    users: list[dict] = []
    offset = 0
    while True:
        page = client.get("/users", params={"offset": offset, "limit": 200, "state": "active"})
        page.raise_for_status()
        batch = page.json()
        items = batch["items"] if isinstance(batch, dict) else batch
        users += items
        if len(items) < 200:
            return users
        offset += len(items)


def _idle_for(server: dict, now: dt.datetime) -> float:
    last = server.get("last_activity") or server.get("started")
    if not last:
        return 0.0
    return (now - dt.datetime.fromisoformat(last.replace("Z", "+00:00"))).total_seconds()


def _stop(client: httpx.Client, name: str, server: str, why: str) -> bool:
    path = f"/users/{name}/server" if not server else f"/users/{name}/servers/{server}"
    if client.delete(path).status_code in (202, 204):
        log.warning("stopped %s's server: %s", name, why)
        return True
    return False


def sweep(client: httpx.Client, settings: settings_mod.Settings) -> list[str]:
    """Stop the servers of accounts that may not act, and class accounts' idle labs; returns
    whose servers were stopped."""
    users = hub_users(client)
    running = {u["name"]: u.get("servers", {}) for u in users}
    if not running:
        return []
    with database.connect_admin(settings) as conn:
        ended = set(accounts.inactive_among(conn, list(running)))
    now = dt.datetime.now(dt.timezone.utc)
    stopped = []
    for u in users:
        name = u["name"]
        for server, model in running[name].items():
            if name in ended:
                why = "the account may no longer act"
            elif u.get("groups") and model.get("ready") and _idle_for(model, now) > settings.hub_class_idle_s:
                why = f"a class account's lab, idle for more than {settings.hub_class_idle_s} s"
            else:
                continue
            if _stop(client, name, server, why):
                stopped.append(name)
    return stopped


def main() -> None:
    signals.exit_on_interrupt()
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s expiry] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = settings_mod.get()
    client = httpx.Client(
        base_url=os.environ["JUPYTERHUB_API_URL"],
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"},
        timeout=30,
    )
    proxy = routes.proxy_client(settings)
    while True:
        try:
            for path in routes.keep(settings, proxy):
                log.info("proxy route %s -> the service's unix socket", path)
        except (httpx.HTTPError, OSError) as exc:
            log.error("the proxy's routes could not be checked: %s", exc)
        try:
            sweep(client, settings)
        except (httpx.HTTPError, OSError, psycopg.Error) as exc:
            log.error("sweep failed, trying again in %d s: %s", EVERY_S, exc)
        time.sleep(EVERY_S)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # JupyterHub stopping it: no traceback in the hub's log
        pass
