"""`python -m starbox.service [--proxy-socket]`: run the service in the foreground (what `starbox up`
starts).

The service takes a caller's address from its TCP connection and from nothing else: no
X-Forwarded-For is believed there (uvicorn's default would believe it from 127.0.0.1, where every
lab's user can connect and claim any address to slip past the login limits). In shared mode
(`--proxy-socket`) it also listens on a unix socket only root can reach, in the hub's private
folder: the hub's proxy sends the public port's requests there, and on that socket the last
X-Forwarded-For entry (the address the proxy saw) is the caller's (deps.client_address).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

import uvicorn

from starbox import settings as settings_mod
from starbox.service.app import create_app
from starbox.service.deps import proxy_socket


def _unix_listener(path: Path) -> socket.socket:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)  # 0600 from its first moment
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    return sock


def main(argv: list[str] | None = None) -> None:
    s = settings_mod.get()
    config = uvicorn.Config(
        create_app(s),
        host=s.service_host,
        port=s.service_port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=5,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    if "--proxy-socket" not in (sys.argv[1:] if argv is None else argv):
        server.run()
        return
    # uvicorn ends by re-raising the signal that stopped it: the socket file stays behind, and
    # the next start replaces it (the hub checks that someone listens there before using it).
    server.run(sockets=[config.bind_socket(), _unix_listener(proxy_socket(s))])


if __name__ == "__main__":
    main()
