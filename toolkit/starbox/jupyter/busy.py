"""A lab whose kernels are working is active, even when they print nothing for hours.

jupyter_server counts a kernel's messages as activity, so a long quiet computation looks idle:
the hub's idle culler would stop it. jupyter_server also counts any setting whose name ends in
`_last_activity`; this server extension (enabled in appliance/jupyter/config) sets one every few
seconds while any kernel is busy, so running work is never culled, while idle labs still are.
"""

from __future__ import annotations

from jupyter_server._tz import utcnow
from tornado.ioloop import PeriodicCallback

CHECK_EVERY_MS = 5_000
SETTING = "starbox_busy_kernels_last_activity"


def _jupyter_server_extension_points():
    return [{"module": "starbox.jupyter.busy"}]


def _load_jupyter_server_extension(serverapp) -> None:
    kernels, settings = serverapp.kernel_manager, serverapp.web_app.settings

    def mark() -> None:
        for kid in list(kernels.list_kernel_ids()):
            if getattr(kernels.get_kernel(kid), "execution_state", None) == "busy":
                settings[SETTING] = utcnow()
                return

    PeriodicCallback(mark, CHECK_EVERY_MS).start()
