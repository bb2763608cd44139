"""JupyterLab and Voilà for the appliance: the notebooks a newcomer opens and the student apps.

`starbox up` calls `children(settings)` and starts what it returns after the service:

* **JupyterLab** on 127.0.0.1:`jupyter_port`, **without a token or password**. That is safe only
  because it listens on the loopback interface of a one-person laptop: anyone who can open
  127.0.0.1 on the machine can already read the user's files. Never bind it elsewhere without
  turning authentication back on (a hub, or `--IdentityProvider.token`).
  Its root is `$STARBOX_HOME/work`, a writable folder that holds
  - `Welcome.ipynb`, rebuilt at every start, which opens first and links every lesson;
  - `lessons/`, the student's own copy of the published lessons (files are copied when missing,
    never overwritten, so edits survive a new publication);
  - `notebooks-latest/`, a read-only view of the published lessons (`settings.notebooks_latest`,
    the symlink the publishing code swaps). JupyterLab shows it read-only and refuses writes
    there, even for root (see `contents.LessonsContentsManager`).
* **Voilà** on 127.0.0.1:`voila_port`, serving `voila_apps/` with pre-heated kernels: every app
  notebook is executed ahead of time in a pool of kernels (`preheat_kernel`, `default_pool_size`),
  so a page is interactive as soon as it arrives; code is hidden, tracebacks are replaced by a
  plain message. Its configuration is `appliance/jupyter/config/voila.json`. Its templates, in
  `appliance/jupyter/share/voila/templates`: `starbox-lab` is Voilà's `lab` template without the
  web-font links to a CDN, with friendly error pages; `starbox`, the default, is that page with
  Starbox's light front end (`appliance/voila-page`, ipywidgets' widget manager on the page's
  kernel) in place of Voilà's JupyterLab-based one, which a browser takes about a second of CPU
  to start. A page that meets a widget library the light front end lacks reloads on `starbox-lab`.
  What else a page costs is cut in `voila.StarboxVoila`: the front ends' files are cached by the
  browser for good (under a versioned URL; the widget extensions' hashed files immutable), no
  MathJax is loaded (the apps have no formulas), and the kernels that refill a pool run at a
  lower CPU priority than the page that took the last one.

Both run as the Starbox account `settings.local_user` (made here if missing, its random password
kept in `$STARBOX_HOME/secrets/<user>.password`): their kernels get `STARBOX_URL` and
`STARBOX_TOKEN`, so `from starbox import queryClient as qc; qc.query(...)` works in the first
cell. Nothing fetches from the network: news, update checks and the extension manager are off
(`appliance/jupyter/lab-settings`), and the Jupyter processes get their own `HOME`,
`JUPYTER_CONFIG_DIR` and runtime folder under `$STARBOX_HOME/jupyter`, so a developer's
~/.jupyter or ~/.datalab never leaks into the appliance.

The processes are started as `python -m starbox.jupyter lab|voila ...` (`launch.launch`), which
sets that environment (reading the token from its 0600 file, never from the command line) and
runs the Jupyter application in-process.

The modules: `paths` (folders, files, URLs), `workspace` (the work folder and welcome page),
`account` (the local user and its token), `launch` (command lines, children, the launcher),
and, loaded only inside the Jupyter processes, `contents` and `voila`.
"""

from .account import ensure_local_user
from .launch import children, lab_child, pool_status, voila_child, wait_warm
from .paths import (
    LESSON_COPY,
    READ_ONLY_DIR,
    WELCOME,
    app_url,
    apps_dir,
    help_lines,
    lab_url,
    state_dir,
    voila_url,
    work_dir,
)
from .workspace import ensure_workspace, write_welcome

__all__ = [
    "LESSON_COPY",
    "READ_ONLY_DIR",
    "WELCOME",
    "app_url",
    "apps_dir",
    "children",
    "ensure_local_user",
    "ensure_workspace",
    "help_lines",
    "lab_child",
    "lab_url",
    "pool_status",
    "state_dir",
    "voila_child",
    "voila_url",
    "wait_warm",
    "work_dir",
    "write_welcome",
]
