"""The hub service `expiry`: every EVERY_S seconds, the servers of accounts that may no longer act
(disabled, their class ended, removed) are stopped through the hub's API. With the logins refused
(authenticator.py) and their Starbox tokens refused by the service (accounts.ACTIVE), that ends
an account's access within a minute of its end. Runs as a JupyterHub-managed service with its
own token (JUPYTERHUB_API_TOKEN) and a role that may only list users and stop servers."""

from __future__ import annotations

import logging
import os
import time

import httpx
import psycopg

from starbox import accounts, database
from starbox import settings as settings_mod

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


def sweep(client: httpx.Client, settings: settings_mod.Settings) -> list[str]:
    """Stop the servers of accounts that may not act; returns whose servers were stopped."""
    running = {u["name"]: u.get("servers", {}) for u in hub_users(client)}
    if not running:
        return []
    with database.connect_admin(settings) as conn:
        ended = accounts.inactive_among(conn, list(running))
    stopped = []
    for name in ended:
        for server in running[name]:
            path = f"/users/{name}/server" if not server else f"/users/{name}/servers/{server}"
            answer = client.delete(path)
            if answer.status_code in (202, 204):
                stopped.append(name)
                log.warning("stopped %s's server: the account may no longer act", name)
    return stopped


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s expiry] %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = settings_mod.get()
    client = httpx.Client(
        base_url=os.environ["JUPYTERHUB_API_URL"],
        headers={"Authorization": f"token {os.environ['JUPYTERHUB_API_TOKEN']}"},
        timeout=30,
    )
    while True:
        try:
            sweep(client, settings)
        except (httpx.HTTPError, OSError, psycopg.Error) as exc:
            log.error("sweep failed, trying again in %d s: %s", EVERY_S, exc)
        time.sleep(EVERY_S)


if __name__ == "__main__":
    main()
