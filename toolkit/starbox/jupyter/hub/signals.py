"""Signals for the hub's managed services. JupyterHub stops a service with SIGINT, waits 10 s,
then sends SIGTERM (its service spawner takes no configuration). A process started from a
shell without job control (`make up &`, a cron job, nohup) inherits SIGINT *ignored*, and
Python then never installs its KeyboardInterrupt handler: each service would cost `starbox
down` those 10 s. So the services set their handlers themselves."""

from __future__ import annotations

import signal
import sys


def exit_on_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
