"""Saving a query result into a user's storage (out=vos://… or out=<user>://…)."""

from __future__ import annotations

from pathlib import Path

from starbox.accounts import User
from starbox.errors import Unauthorized
from starbox.settings import Settings

STORAGE_SCHEMES = ("vos://",)


def is_storage_uri(out: str, user: User) -> bool:
    return out.startswith("vos://") or (not user.anonymous and out.startswith(f"{user.name}://"))


def save_to_storage(settings: Settings, user: User, uri: str, src: Path) -> None:
    """Copy a finished result file to `uri`, atomically and within the user's quota."""
    from starbox.storage.paths import quota_check, resolve, write_atomic

    if user.anonymous:
        raise Unauthorized("Error: anonymous users cannot save to storage; log in first")
    target = resolve(settings, user, uri, write=True)
    quota_check(settings, user, src.stat().st_size)

    def chunks():
        with src.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    write_atomic(target, chunks())
