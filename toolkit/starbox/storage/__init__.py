"""Per-user storage (Data Lab's Storage Manager): names to paths, the operations, signed URLs."""

from starbox.storage.paths import resolve, write_atomic

__all__ = ["resolve", "write_atomic"]
