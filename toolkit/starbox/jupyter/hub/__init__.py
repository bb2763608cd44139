"""Shared mode (`starbox up --shared`): JupyterHub with Starbox logins, one JupyterLab per account
as its own Unix user, behind one public HTTPS port.

The modules: `paths` (where things live), `unix` (one Unix user per account), `tls` (the box's
CA and certificate), `share` (what every user may read), `authenticator` and `spawner` (loaded in
the hub), `seed` (runs as the user, prepares the home), `config` (the hub's configuration from
Starbox's settings), `expiry` (a hub service that stops ended accounts' servers), `launch` (the
hub as one of `starbox up`'s children).
"""
