"""The hub's whole configuration, built from Starbox's settings (appliance/hub/jupyterhub_config.py
calls `apply(c)`). What it sets and why:

* one public port, HTTPS (the proxy terminates TLS, plain HTTP on hub_http_port redirects); the
  hub's and the proxy's APIs on loopback. Behind the port, besides /hub/ and /user/<name>/: the
  Voilà apps at /apps/ and the service's Data Lab API, TAP, cone search and manual at their usual
  paths, so a researcher's own client reaches the box through the same port;
* Starbox logins (authenticator.py), labs as Unix users (spawner.py) with the registered
  kernels (kernels.py; the real dl client in them pointed at this box), labs keep running when the
  hub restarts (cleanup_servers=False), spawn timeouts for a busy 2-core box and a cap on
  spawns in flight (a class logging in at once gets "try again" instead of a stalled hub);
* services with least-privilege roles: `starbox-admin` (the `starbox hub` commands), `expiry`
  (stops the servers of accounts that were disabled or ended), `idle-culler`.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import quote

from starbox import keys
from starbox import settings as settings_mod
from starbox.service.deps import proxy_socket
from starbox.settings import Settings

from . import kernels, tls
from .authenticator import StarboxAuthenticator
from .paths import activity_interval, hub_dir, proxy_command
from .spawner import StarboxSpawner

# The service's paths the public port carries (starbox.service.routers.MOUNTS and the manual).
SERVICE_PATHS = (
    "/auth/",
    "/query/",
    "/res/",
    "/storage/",
    "/tap/",
    "/scs/",
    "/sia/",
    "/svc/",
    "/hooks/",
    "/docs/",
    "/apidocs/",
)

ADMIN_SCOPES = [
    "list:users",
    "read:users",
    "read:users:activity",
    "read:servers",
    "servers",
    "admin:users",
    "list:groups",
    "read:groups",
    "admin:groups",
    "delete:servers",
    "tokens",
    "shares",
]
EXPIRY_SCOPES = ["list:users", "read:users", "read:servers", "delete:servers"]
CULLER_SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]


def _listening(sock: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        probe.settimeout(2)
        try:
            probe.connect(str(sock))
            return True
        except OSError:  # no file, or a stale one: nobody listens
            return False


def service_target(settings: Settings) -> str:
    """The service's unix socket when it listens there (`starbox up --shared` starts it so):
    there it knows each caller's address from the proxy; else its loopback port."""
    sock = proxy_socket(settings)
    if _listening(sock):
        return "http+unix://" + quote(str(sock), safe="")
    return f"http://127.0.0.1:{settings.service_port}"


def extra_routes(settings: Settings) -> dict[str, str]:
    """The routes the hub gives its proxy besides its own: the apps, and the service's paths
    when they go to its loopback port (JupyterHub takes only http targets; the unix socket's
    routes are kept in the proxy by the expiry service, routes.py)."""
    routes = {"/apps/": f"http://127.0.0.1:{settings.voila_port}"}
    target = service_target(settings)
    if not target.startswith("http+unix:"):
        routes.update(dict.fromkeys(SERVICE_PATHS, target))
    return routes


def _service_env() -> dict[str, str]:
    """The hub's managed services read the same settings as the hub."""
    return {k: v for k, v in os.environ.items() if k.startswith("STARBOX_") or k in ("PATH", "HOME")}


def services(settings: Settings) -> tuple[list[dict], list[dict]]:
    env = _service_env()
    listed: list[dict] = [
        {"name": "starbox-admin", "api_token": keys.hub_admin_token(settings)},
        {"name": "expiry", "command": [sys.executable, "-m", "starbox.jupyter.hub.expiry"], "environment": env},
        {
            "name": "idle-culler",
            "command": [
                sys.executable,
                "-m",
                "starbox.jupyter.hub.culler",
                f"--timeout={settings.hub_idle_s}",
                f"--cull-every={settings.hub_cull_every_s}",
                "--concurrency=4",
            ],
            "environment": env,
        },
    ]
    roles: list[dict] = [
        # every user may share their own lab with another (JupyterHub's sharing; they then edit
        # its notebooks together, jupyter-collaboration), and see what is shared with them
        {"name": "user", "scopes": ["self", "shares!user", "read:users:name", "read:groups:name"]},
        {"name": "starbox-admin", "scopes": ADMIN_SCOPES, "services": ["starbox-admin"]},
        {"name": "starbox-expiry", "scopes": EXPIRY_SCOPES, "services": ["expiry"]},
        {"name": "idle-culler", "scopes": CULLER_SCOPES, "services": ["idle-culler"]},
    ]
    return listed, roles


def apply(c, settings: Settings | None = None) -> None:
    s = settings or settings_mod.get()
    state = hub_dir(s)
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(state, 0o700)
    cert = tls.ensure(s)
    kernels.point_datalab_clients(s)

    c.JupyterHub.bind_url = f"https://{s.hub_address}:{s.hub_port}/"
    c.JupyterHub.ssl_cert = str(cert.cert)
    c.JupyterHub.ssl_key = str(cert.key)
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{s.hub_api_port}"
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{s.hub_proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = keys.hub_proxy_token(s)
    command = [str(proxy_command(s))]
    if s.hub_http_port:
        command += [f"--redirect-port={s.hub_http_port}", f"--redirect-to={s.hub_port}"]
    c.ConfigurableHTTPProxy.command = command
    c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
    c.Proxy.extra_routes = extra_routes(s)

    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.shutdown_on_logout = False
    c.JupyterHub.concurrent_spawn_limit = s.hub_spawn_limit
    c.JupyterHub.last_activity_interval = activity_interval(s)

    c.JupyterHub.authenticator_class = StarboxAuthenticator
    c.Authenticator.manage_groups = True
    c.Authenticator.refresh_pre_spawn = True
    c.Authenticator.auth_refresh_age = 60

    c.JupyterHub.spawner_class = StarboxSpawner
    c.Spawner.cmd = [str(s.hub_env / "bin" / "jupyterhub-singleuser")]
    c.Spawner.disable_user_config = True
    c.Spawner.default_url = "/lab/tree/Welcome.ipynb"
    c.Spawner.start_timeout = s.hub_spawn_timeout_s
    c.Spawner.http_timeout = s.hub_spawn_timeout_s

    c.JupyterHub.services, c.JupyterHub.load_roles = services(s)
