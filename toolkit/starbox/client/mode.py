"""Whether this process's toolkit calls go over HTTP or to the service application in-process."""

from __future__ import annotations

from starbox import settings as settings_mod

MODES = ("http", "inprocess")
_mode: str | None = None  # set_mode(); None: the toolkit_mode setting


def set_mode(mode: str | None) -> None:
    """'http' or 'inprocess' for this process; None goes back to the toolkit_mode setting."""
    global _mode
    if mode is not None and mode not in MODES:
        raise ValueError(f"the toolkit's mode is one of {', '.join(MODES)}, not {mode!r}")
    _mode = mode


def mode() -> str:
    current = _mode or settings_mod.get().toolkit_mode.strip().lower() or "http"
    if current not in MODES:
        raise ValueError(f"STARBOX_TOOLKIT_MODE is one of {', '.join(MODES)}, not {current!r}")
    return current
