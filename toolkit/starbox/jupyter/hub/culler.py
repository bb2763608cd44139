"""The hub's idle-culler service: jupyterhub-idle-culler, with the signal handlers that let
JupyterHub stop it at once (signals.py)."""

from __future__ import annotations

from jupyterhub_idle_culler import main

from .signals import exit_on_interrupt

if __name__ == "__main__":
    exit_on_interrupt()
    main()
