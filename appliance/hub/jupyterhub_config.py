# JupyterHub's configuration for `starbox up --shared`: everything comes from Starbox's settings.
from starbox.jupyter.hub import config

config.apply(c)  # noqa: F821 - JupyterHub defines `c`
