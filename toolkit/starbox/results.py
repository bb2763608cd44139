"""Saving a query result into a user's storage (out=vos://… or out=<user>://…)."""

from __future__ import annotations

from collections.abc import Iterable

from starbox.accounts import User
from starbox.errors import Unauthorized
from starbox.settings import Settings
from starbox.storage import ops

STORAGE_SCHEMES = ("vos://",)


def is_storage_uri(out: str, user: User) -> bool:
    return out.startswith("vos://") or (not user.anonymous and out.startswith(f"{user.name}://"))


def save_to_storage(settings: Settings, user: User, uri: str, chunks: Iterable[bytes]) -> None:
    """Stream a result into `uri`: atomically (a failed query leaves no file) and within the
    user's quota (the cap on one upload does not apply to results)."""
    if user.anonymous:
        raise Unauthorized("Error: anonymous users cannot save to storage; log in first")
    ops.write_bytes(settings, user, uri, chunks, upload=False)
