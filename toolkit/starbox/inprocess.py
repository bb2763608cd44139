"""`starbox.inprocess.start()` / `stop()`: the toolkit's in-process mode (see
starbox.client.inprocess, where it lives)."""

from starbox.client.inprocess import InProcessTransport, check_home, start, stop, transport

__all__ = ["InProcessTransport", "check_home", "start", "stop", "transport"]
