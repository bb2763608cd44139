"""Storage names to paths on disk, with every permission check in one place.

Names, as Data Lab's client sends them:

- ``vos://a/b.csv``, ``vos:a/b.csv``, a bare ``a/b.csv``: the caller's own home
  (``vos:///a`` is ``vos://a``, the client's own convention);
- ``<user>://public/...``: another user's public folder, readable by everyone, writable only by
  its owner; ``<user>://...`` elsewhere is that user's private space (only the owner).

Everything lands under ``storage_home.root(settings, owner)``. ``..``, absolute paths, NUL bytes
and symbolic links whose target leaves the owner's tree are refused (400); reading another
user's files outside ``public/`` (also through a link), writing into anyone else's tree and
anonymous writes are forbidden (403).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio

from starbox import storage_home
from starbox.accounts import User
from starbox.errors import Forbidden, StarboxError, TooLarge
from starbox.settings import Settings
from starbox.storage import quota
from starbox.storage.quota import PART_PREFIX  # temporary files of atomic writes; never listed
from starbox.storage_home import RESERVED_PREFIX

PUBLIC = "public"
META_NAME = ".starbox-meta.json"  # per-user metadata (tags); never listed
HIDDEN = (PART_PREFIX, META_NAME)
_SCHEME = re.compile(r"^([A-Za-z0-9_.\-]*):(.*)$", re.S)
_OWNER = re.compile(r"^[a-z][a-z0-9_]{1,29}$")
MB = 1024 * 1024


@dataclass(frozen=True)
class Node:
    """A parsed storage name: whose tree, which path inside it, and where that is on disk."""

    owner: str
    parts: tuple[str, ...]  # components below the owner's root; () is the root itself
    path: Path  # storage_home.root(owner) / parts (links not followed)

    @property
    def rel(self) -> str:
        return "/".join(self.parts)

    @property
    def uri(self) -> str:
        """The name as the owner sees it."""
        return "vos://" + self.rel

    def uri_for(self, user: User) -> str:
        return ("vos://" if user.name == self.owner else f"{self.owner}://") + self.rel

    @property
    def public(self) -> bool:
        return bool(self.parts) and self.parts[0] == PUBLIC


def split(user: User, uri: str) -> tuple[str, tuple[str, ...]]:
    """(owner, path components) of a storage name; no disk access, no permission checks."""
    if not isinstance(uri, str):
        raise StarboxError("Error: the storage name must be text")
    if "\x00" in uri:
        raise StarboxError("Error: NUL bytes are not allowed in storage names")
    name = uri.strip()
    match = _SCHEME.match(name)
    if match:
        scheme, rest = match.groups()
        if rest.startswith("//"):
            rest = rest[2:]
            if rest.startswith("/") and not rest.startswith("//"):
                rest = rest[1:]  # vos:///a is vos://a (the client's ///-to-// rule)
        if scheme.lower() in ("", "vos"):
            owner = user.name
        elif _OWNER.match(scheme):
            owner = scheme
        else:
            raise StarboxError(f"Error: {uri!r} is not a storage name (vos://path or <user>://public/path)")
    else:
        owner, rest = user.name, name
    if rest.startswith("/") or rest.startswith("\\"):
        raise StarboxError(f"Error: absolute paths are not allowed: {uri!r}; use vos://path")
    parts = []
    for part in rest.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise StarboxError(f"Error: '..' is not allowed in storage names: {uri!r}")
        if part.startswith(RESERVED_PREFIX):
            raise StarboxError(f"Error: names starting with {RESERVED_PREFIX!r} are reserved: {uri!r}")
        parts.append(part)
    return owner, tuple(parts)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def node(settings: Settings, user: User, uri: str, *, write: bool = False, follow: bool = True) -> Node:
    """Parse and check a storage name; see the module's docstring for the rules.

    ``follow=False`` leaves a link in the last component unchecked (to remove or stat the link
    itself); links in the folders above are always checked.
    """
    owner, parts = split(user, uri)
    if user.anonymous and owner == user.name:
        raise Forbidden(
            "Error: anonymous users have no storage of their own; log in, or read <user>://public/... files"
        )
    if write and user.anonymous:
        raise Forbidden("Error: anonymous users cannot write to storage; log in first")
    mine = owner == user.name
    if not mine:
        if write:
            where = "public folder" if parts and parts[0] == PUBLIC else "storage"
            raise Forbidden(f"Error: permission denied: {owner}'s {where} is not writable by {user.name}")
        if not parts or parts[0] != PUBLIC:
            raise Forbidden(f"Error: permission denied: only {owner}://public/ is readable by other users")
    root = storage_home.root(settings, owner)
    path = root.joinpath(*parts)
    real_root = os.path.realpath(root)
    checked = path if follow or not parts else path.parent
    real = os.path.realpath(checked)
    if not _inside(real, real_root):
        raise StarboxError(f"Error: {uri!r} goes through a link that leaves the storage tree")
    if not mine and not _inside(real, os.path.join(real_root, PUBLIC)):
        raise Forbidden(f"Error: permission denied: {uri!r} links to a private file of {owner}")
    return Node(owner, parts, path)


def resolve(settings: Settings, user: User, uri: str, *, write: bool = False) -> Path:
    """The path on disk of a storage name, after every check; raises Forbidden or StarboxError."""
    return node(settings, user, uri, write=write).path


class _PartFile:
    """A temporary file beside `path` that takes its place only on commit(); leaving the
    `with` block any other way (an error, more than `limit` bytes, Ctrl-C) removes it.

    When `limit` is a quota.Allowance, its bytes are reserved first (for `expected` bytes if
    the size is declared) and given back once the file has landed or is gone. `held`: a
    reservation the caller took (and gives back) that this file counts against."""

    def __init__(
        self,
        path: Path,
        limit: int | None,
        limit_message: str | None,
        expected: int | None = None,
        held: "quota.Reservation | None" = None,
    ):
        self.path = Path(path)
        self.reservation = None
        if held is None and isinstance(limit, quota.Allowance):
            self.reservation = limit.reserve(expected)
            limit, limit_message = self.reservation.bytes, self.reservation.message
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)  # resolve() has checked the path
            owner = held or self.reservation
            name = owner.part_name() if owner else f"{PART_PREFIX}{secrets.token_hex(8)}"
            self.tmp = self.path.parent / name
            self.limit, self.limit_message, self.size = limit, limit_message, 0
            self.fh = open(self.tmp, "xb")
        except BaseException:
            self.release()
            raise

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise TooLarge(self.limit_message or f"Error: the file is larger than {_mb(self.limit)} allowed")
        self.fh.write(chunk)

    def sync(self) -> None:
        self.fh.flush()
        os.fsync(self.fh.fileno())

    def commit(self) -> None:
        self.fh.close()
        os.replace(self.tmp, self.path)

    def release(self) -> None:
        if self.reservation is not None:
            self.reservation.release()

    def __enter__(self) -> "_PartFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.fh.close()
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)


def write_atomic(
    path: Path,
    chunks: Iterable[bytes],
    *,
    limit: int | None = None,
    limit_message: str | None = None,
    expected: int | None = None,
) -> int:
    """Write chunks to a temporary file beside `path`, then rename it into place; returns the
    number of bytes. If anything goes wrong (an exception in the chunks, more than `limit`
    bytes, a full disk) the temporary file is removed and `path` is untouched. A quota
    Allowance as `limit` is reserved for the write (see _PartFile)."""
    part = _PartFile(path, limit, limit_message, expected)
    try:
        with part:
            for chunk in chunks:
                part.write(chunk)
            part.sync()
            part.commit()
    finally:
        part.release()  # after the rename: the file now counts on its own
    return part.size


async def write_atomic_async(
    path: Path,
    chunks: AsyncIterable[bytes],
    *,
    limit: int | None = None,
    limit_message: str | None = None,
    expected: int | None = None,
) -> int:
    """write_atomic for an async stream of chunks (an HTTP request body); same guarantees.
    Reserving and releasing take a lock and walk the tree: they run in a worker thread."""
    with anyio.CancelScope(shield=True):  # a reservation taken is a reservation given back
        part = await anyio.to_thread.run_sync(_PartFile, path, limit, limit_message, expected)
    try:
        with part:
            async for chunk in chunks:
                part.write(chunk)
            await anyio.to_thread.run_sync(part.sync)
            part.commit()
    finally:
        with anyio.CancelScope(shield=True):  # a client that went away still gives the bytes back
            await anyio.to_thread.run_sync(part.release)
    return part.size


def _mb(n: int) -> str:
    return f"{n / MB:.1f} MB"


def usage(settings: Settings, username: str) -> int:
    """Bytes stored in a user's tree and staged uploads (links count as themselves)."""
    return quota.usage(settings, username)


def quota_free(settings: Settings, user: User) -> int:
    """What a new write may take now (an estimate; quota.take() decides under the lock)."""
    return quota.free(settings, user.name)


__all__ = [
    "Node",
    "node",
    "resolve",
    "split",
    "write_atomic",
    "write_atomic_async",
    "quota_free",
    "usage",
    "PUBLIC",
    "HIDDEN",
    "PART_PREFIX",
    "META_NAME",
]
