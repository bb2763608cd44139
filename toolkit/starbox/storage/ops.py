"""The Storage Manager's operations as plain functions of (settings, user, ...).

The /storage router, the CLI, the toolkit and the tests call these. Each returns what the
client expects in the body (or a value the router turns into it) and raises a StarboxError
subclass, carrying its HTTP status, for every refusal: the message is the whole story.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import shutil
import stat as stat_mod
import threading
import time
import urllib.parse
from collections.abc import AsyncIterable, Iterable
from pathlib import Path

import anyio

from starbox import outbound, storage_home
from starbox.accounts import User
from starbox.errors import Conflict, Forbidden, NotFound, StarboxError, TooLarge
from starbox.settings import Settings
from starbox.storage import quota, signing
from starbox.storage.paths import (
    MB,
    META_NAME,
    PUBLIC,
    RESERVED_PREFIX,
    Node,
    _PartFile,
    node,
    usage,
    write_atomic,
    write_atomic_async,
)

NODE_MISSING = "A Node does not exist with the requested URI."
NODE_EXISTS = "A Node already exists with the requested URI."
NOT_PERMITTED = "Error: operation not permitted"
PROTECTED = {(), ("tmp",), (PUBLIC,)}
LOAD_DEADLINE = 600.0  # seconds a /load may take in all
XFER_CHUNK_MAX = 64 * MB  # one POST /xfer body
PROFILES = {"default": "Starbox local storage"}


BadGateway = outbound.BadGateway  # a remote server that /load fetches from failed


class InsufficientStorage(StarboxError):
    status = 507


def _oserrors(func):
    """Turn file-system errors into clear refusals (never a 500)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except StarboxError:
            raise
        except OSError as exc:
            raise _oserror(exc) from None

    return wrapper


def _oserror(exc: OSError) -> StarboxError:
    if isinstance(exc, FileNotFoundError):
        return NotFound(NODE_MISSING)
    if isinstance(exc, FileExistsError):
        return Conflict(NODE_EXISTS)
    if isinstance(exc, PermissionError):
        return Forbidden("Error: permission denied")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return InsufficientStorage("Error: the storage disk is full; ask the site admin")
    if isinstance(exc, NotADirectoryError):
        return StarboxError("Error: a folder in that path is a file")
    if isinstance(exc, IsADirectoryError):
        return StarboxError("Error: that name is a directory")
    if exc.errno == errno.ELOOP:
        return StarboxError("Error: too many levels of links")
    if exc.errno == errno.ENAMETOOLONG:
        return StarboxError("Error: the name is too long")
    return StarboxError(f"Error: {exc.strerror or exc}")


# --- helpers ----------------------------------------------------------------------------------


def _home(settings: Settings, user: User) -> None:
    """Make sure a logged-in user's tree exists (accounts made before storage existed)."""
    if not user.anonymous and not storage_home.root(settings, user.name).is_dir():
        storage_home.create(settings, user.name)


def _node(
    settings: Settings, user: User, uri: str | None, *, write: bool = False, follow: bool = True, what: str = "name"
) -> Node:
    if uri is None or not str(uri).strip():
        raise StarboxError(f"Error: no {what} given")
    _home(settings, user)
    return node(settings, user, uri, write=write, follow=follow)


def _exists(n: Node) -> bool:
    return os.path.lexists(n.path)


def _must_exist(n: Node) -> None:
    if not os.path.lexists(n.path):
        raise NotFound(NODE_MISSING)
    if not os.path.exists(n.path):
        raise NotFound(f"{NODE_MISSING} (a link whose target is gone)")


def _child(n: Node, name: str) -> Node:
    return Node(n.owner, n.parts + (name,), n.path / name)


def _visible(name: str) -> bool:
    return not name.startswith(RESERVED_PREFIX)


def _perms(n: Node, st: os.stat_result, is_link: bool) -> str:
    kind = "l" if is_link else ("d" if stat_mod.S_ISDIR(st.st_mode) else "-")
    owner = "rwx" if kind in "dl" else "rw-"
    other = ("r-x" if kind in "dl" else "r--") if n.public else "---"
    return kind + owner + other + other if n.public else kind + owner + "------"


def _link_target_uri(settings: Settings, user: User, n: Node) -> str:
    target = os.path.realpath(n.path)
    root = os.path.realpath(storage_home.root(settings, n.owner))
    rel = os.path.relpath(target, root)
    if rel == ".." or rel.startswith(".." + os.sep):
        return "(outside the storage tree)"
    if not _inside(target, _readable_area(settings, user, n)):
        return "(private)"
    rel = "" if rel == "." else rel
    return ("vos://" if user.name == n.owner else f"{n.owner}://") + rel


def _uri_of(user: User, n: Node) -> str:
    return n.uri_for(user)


# --- metadata (tags) --------------------------------------------------------------------------

_meta_lock = threading.Lock()


def _meta_path(settings: Settings, owner: str) -> Path:
    return storage_home.root(settings, owner) / META_NAME


def _meta_load(settings: Settings, owner: str) -> dict:
    try:
        data = json.loads(_meta_path(settings, owner).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _meta_update(settings: Settings, owner: str, change) -> None:
    with _meta_lock:
        data = _meta_load(settings, owner)
        tags = data.setdefault("tags", {})
        change(tags)
        if not tags:
            data.pop("tags")
        path = _meta_path(settings, owner)
        if not data and not path.exists():
            return
        write_atomic(path, [json.dumps(data, indent=1, sort_keys=True).encode()])


def _meta_forget(settings: Settings, n: Node) -> None:
    prefix = n.rel + "/"

    def change(tags):
        for key in [k for k in tags if k == n.rel or k.startswith(prefix)]:
            del tags[key]

    if _meta_load(settings, n.owner).get("tags"):
        _meta_update(settings, n.owner, change)


def _meta_move(settings: Settings, src: Node, dst: Node) -> None:
    prefix = src.rel + "/"

    def change(tags):
        for key in [k for k in tags if k == src.rel or k.startswith(prefix)]:
            tags[dst.rel + key[len(src.rel) :]] = tags.pop(key)

    if src.owner == dst.owner and _meta_load(settings, src.owner).get("tags"):
        _meta_update(settings, src.owner, change)


def tags_of(settings: Settings, n: Node) -> list[str]:
    return list(_meta_load(settings, n.owner).get("tags", {}).get(n.rel, []))


# --- reading ----------------------------------------------------------------------------------


def _entries(settings: Settings, user: User, n: Node) -> list[tuple[Node, os.stat_result, bool]]:
    """(child node, stat, is_link) for a container's entries, or for the node itself (data).

    A link is described by its target only where the user may read that target.
    """
    area = _readable_area(settings, user, n)

    def describe(path: str, is_link: bool) -> os.stat_result:
        if is_link and not _inside(os.path.realpath(path), area):
            return os.lstat(path)
        try:
            return os.stat(path)
        except OSError:
            return os.lstat(path)

    if os.path.isdir(n.path):
        out = []
        with os.scandir(n.path) as it:
            for entry in it:
                if _visible(entry.name):
                    link = entry.is_symlink()
                    out.append((_child(n, entry.name), describe(entry.path, link), link))
        return sorted(out, key=lambda e: e[0].parts[-1])
    link = os.path.islink(n.path)
    return [(n, describe(str(n.path), link), link)]


@_oserrors
def ls(settings: Settings, user: User, name: str | None = "vos://", fmt: str = "csv") -> str:
    """A listing: `csv` (names joined by commas), `long` (ls -l style), `short` (columns), or
    `json` (Starbox's own: name, type, size and mtime of each entry; JupyterLab's storage/ folder
    reads it)."""
    fmt = (fmt or "csv").lower()
    if fmt not in ("csv", "long", "short", "raw", "json"):
        raise StarboxError(f"Error: unknown listing format {fmt!r}; use csv, long, short or json")
    n = _node(settings, user, name or "vos://")
    _must_exist(n)
    entries = _entries(settings, user, n)
    names = [e[0].parts[-1] if e[0].parts else "" for e in entries]
    if fmt in ("csv", "raw"):
        return ",".join(names)
    if fmt == "json":
        return json.dumps(
            [
                {
                    "name": name,
                    "type": "directory" if stat_mod.S_ISDIR(st.st_mode) else "file",
                    "size": 0 if stat_mod.S_ISDIR(st.st_mode) else st.st_size,
                    "mtime": st.st_mtime,
                }
                for name, (_, st, _) in zip(names, entries)
            ]
        )
    if fmt == "short":
        if not names:
            return ""
        width = max(16, max(len(x) for x in names) + 2)
        per_row = max(1, 80 // width)
        rows = [names[i : i + per_row] for i in range(0, len(names), per_row)]
        return "\n".join("".join(x.ljust(width) for x in row).rstrip() for row in rows) + "\n"
    lines = []
    for child, st, is_link in entries:
        is_dir = stat_mod.S_ISDIR(st.st_mode)
        size = 0 if is_dir else st.st_size
        when = time.strftime("%d %b %Y %H:%M", time.localtime(st.st_mtime))
        label = child.parts[-1] if child.parts else ""
        if is_dir and not is_link:
            label += "/"
        if is_link:
            label += " -> " + _link_target_uri(settings, user, child)
        lines.append(f"{_perms(child, st, is_link)}  {child.owner}{size:>8}  {when}  {label}")
    return "\n".join(lines) + ("\n" if lines else "")


@_oserrors
def stat(settings: Settings, user: User, name: str | None) -> dict:
    """Data Lab's stat dict: name, groupread, groupwrite, publicread, owner, perms, target, size, type."""
    n = _node(settings, user, name, follow=False)
    if not os.path.lexists(n.path):
        raise NotFound(NODE_MISSING)
    is_link = os.path.islink(n.path)
    if is_link:
        node(settings, user, n.uri_for(user))  # reading through a link obeys the target's rules
    try:
        st = os.stat(n.path)
    except OSError:
        st = os.lstat(n.path)
    is_dir = stat_mod.S_ISDIR(st.st_mode)
    result = {
        "name": _uri_of(user, n),
        "groupread": "",
        "groupwrite": "",
        "publicread": n.public,
        "owner": n.owner,
        "perms": _perms(n, st, is_link),
        "target": _link_target_uri(settings, user, n) if is_link else "",
        "size": 0 if is_dir else st.st_size,
        "type": "link" if is_link else ("container" if is_dir else "data"),
    }
    tags = tags_of(settings, n)
    if tags:
        result["tags"] = tags
    return result


@_oserrors
def isdir(settings: Settings, user: User, name: str | None) -> bool:
    n = _node(settings, user, name)
    return os.path.isdir(n.path)


@_oserrors
def access(settings: Settings, user: User, name: str | None, mode: str | None = None) -> bool:
    """May `user` read (r), write (w) or both (rw) `name`? Unknown names and refusals are False."""
    mode = (mode or "r").lower()
    if mode in ("none", ""):
        mode = "r"
    if mode not in ("r", "w", "rw", "wr"):
        raise StarboxError(f"Error: unknown access mode {mode!r}; use r, w or rw")
    try:
        n = _node(settings, user, name, write="w" in mode)
    except (Forbidden, NotFound):
        return False
    if "r" in mode and not os.path.exists(n.path):
        return False
    if "w" in mode and not os.path.exists(n.path) and not os.path.isdir(n.path.parent):
        return False
    return True


@_oserrors
def get_url(settings: Settings, user: User, name: str | None, auth_token: str | None = None) -> str:
    """A signed URL that downloads `name` without any headers, while the session of `auth_token`
    (the request's token) stays open."""
    n = _node(settings, user, name)
    _must_exist(n)
    if os.path.isdir(n.path):
        raise StarboxError(f"Error: {_uri_of(user, n)} is a directory; get files one by one")
    return signing.sign(settings, user, n, "get", session=signing.session_of(auth_token))


@_oserrors
def put_url(settings: Settings, user: User, name: str | None, auth_token: str | None = None) -> str:
    """A signed URL that takes the file's bytes with PUT (same session rule as get_url)."""
    n = _node(settings, user, name, write=True)
    if not n.parts:
        raise StarboxError("Error: name a file to upload, e.g. vos://data.csv")
    if os.path.isdir(n.path):
        raise StarboxError(f"Error: {_uri_of(user, n)} is a directory; name a file inside it")
    return signing.sign(settings, user, n, "put", session=signing.session_of(auth_token))


def signed_grant(settings: Settings, token: str, method: str, connect) -> signing.Grant:
    """The grant of a signed URL, refused (403) if tampered with, expired, or if its account or
    session has gone since (`connect()`: a context manager giving a service connection, taken
    only once the signature holds)."""
    grant = signing.verify(settings, token, method)
    if grant.user != "anonymous":
        with connect() as conn:
            signing.check_live(conn, grant)
    return grant


def _signed_node(settings: Settings, grant: signing.Grant) -> tuple[User, Node]:
    user = User(grant.user, grant.uid or 0)
    return user, _node(settings, user, grant.uri(), write=grant.method == "put")


@_oserrors
def signed_file(settings: Settings, grant: signing.Grant) -> Path:
    """The file a signed download URL (see signed_grant) stands for, after checking it again."""
    user, n = _signed_node(settings, grant)
    _must_exist(n)
    if not os.path.isfile(n.path):
        raise StarboxError("Error: that name is not a file")
    return n.path


def _upload_limit(settings: Settings, user: User, n: Node, upload: bool = True) -> tuple[int, str]:
    """(bytes allowed for a write to n, the message when passed): what the quota leaves, and for
    an upload also the cap on one upload, whichever is smaller. The first is a quota.Allowance:
    write_atomic() reserves it under the user's lock before the first byte (this is an estimate)."""
    credit = 0
    if os.path.isfile(n.path) and not os.path.islink(n.path):
        credit = os.path.getsize(n.path)  # overwriting gives its old size back
    used, held = usage(settings, user.name), quota.reserved(settings, user.name)
    free = max(settings.storage_quota_mb * MB - used - held + credit, 0)
    full = quota.quota_message(settings, used, held, free)
    cap = settings.max_upload_mb * MB if upload else settings.storage_quota_mb * MB
    cap_message = (
        f"Error: the file is larger than the {settings.max_upload_mb} MB allowed for one upload" if upload else full
    )
    message = full if free < cap else cap_message
    return quota.Allowance(min(free, cap), settings, user.name, cap, cap_message, credit), message


async def signed_upload(
    settings: Settings, grant: signing.Grant, chunks: AsyncIterable[bytes], length: int | None = None
) -> int:
    """Store the body of a PUT to a signed upload URL (see signed_grant), atomically; returns its
    size. A declared Content-Length is reserved as it is; without one, all the upload may take."""
    try:
        user, n = _signed_node(settings, grant)
        limit, message = _upload_limit(settings, user, n)
        if length is not None and length > limit:
            raise TooLarge(message)
        n.path.parent.mkdir(parents=True, exist_ok=True)
        node(settings, user, n.uri_for(user), write=True)  # the folders just made are plain folders
        return await write_atomic_async(n.path, chunks, limit=limit, limit_message=message, expected=length)
    except StarboxError:
        raise
    except OSError as exc:
        raise _oserror(exc) from None


@_oserrors
def write_bytes(settings: Settings, user: User, name: str, chunks: Iterable[bytes], upload: bool = True) -> int:
    """Store chunks at `name` (the toolkit's and the services' own writer), with every check.
    `upload=False` (a query result the service writes): only the quota limits its size."""
    n = _node(settings, user, name, write=True)
    if not n.parts or os.path.isdir(n.path):
        raise StarboxError("Error: name a file to write, not a directory")
    limit, message = _upload_limit(settings, user, n, upload)
    n.path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(n.path, chunks, limit=limit, limit_message=message)


# --- changing the tree ------------------------------------------------------------------------


@_oserrors
def mkdir(settings: Settings, user: User, name: str | None) -> str:
    n = _node(settings, user, name, write=True, what="dir")
    if _exists(n):
        raise Conflict(NODE_EXISTS)
    n.path.mkdir(parents=True)
    return "OK"


@_oserrors
def rm(settings: Settings, user: User, name: str | None) -> str:
    """Remove a file or a link (never what the link points at)."""
    n = _node(settings, user, name, write=True, follow=False, what="file")
    if n.parts in PROTECTED:
        raise Forbidden(NOT_PERMITTED)
    if not os.path.lexists(n.path):
        raise NotFound(NODE_MISSING)
    if os.path.isdir(n.path) and not os.path.islink(n.path):
        raise StarboxError(f"Error: {_uri_of(user, n)} is a directory; use rmdir")
    n.path.unlink()
    _meta_forget(settings, n)
    return "OK"


@_oserrors
def rmdir(settings: Settings, user: User, name: str | None) -> str:
    """Remove a directory and everything in it (a link to a directory: just the link)."""
    n = _node(settings, user, name, write=True, follow=False, what="dir")
    if n.parts in PROTECTED:
        raise Forbidden(NOT_PERMITTED)
    if not os.path.lexists(n.path):
        raise NotFound(NODE_MISSING)
    if os.path.islink(n.path):
        if not os.path.isdir(n.path):
            raise StarboxError(f"Error: {_uri_of(user, n)} is not a directory")
        n.path.unlink()
    elif not os.path.isdir(n.path):
        raise StarboxError(f"Error: {_uri_of(user, n)} is not a directory")
    else:
        shutil.rmtree(n.path)
    _meta_forget(settings, n)
    return "OK"


def _destination(settings: Settings, user: User, src: Node, to: str | None) -> Node:
    dst = _node(settings, user, to, write=True, what="destination (to)")
    if os.path.isdir(dst.path):
        dst = _child(dst, src.parts[-1])
        node(settings, user, dst.uri_for(user), write=True)
    if not dst.parts:
        raise Forbidden(NOT_PERMITTED)
    return dst


def _tree_size(path: Path) -> int:
    if not os.path.isdir(path):
        return os.path.getsize(path)
    return sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)


def _readable_area(settings: Settings, user: User, n: Node) -> str:
    root = os.path.realpath(storage_home.root(settings, n.owner))
    return root if user.name == n.owner else os.path.join(root, PUBLIC)


def _inside(path: str, area: str) -> bool:
    return path == area or path.startswith(area.rstrip(os.sep) + os.sep)


def _copy_tree(src: Path, dst: Path, area: str) -> None:
    """Copy a directory; links are followed only while they stay inside `area`."""
    dst.mkdir()
    with os.scandir(src) as it:
        for entry in it:
            if not _visible(entry.name):
                continue
            target = Path(entry.path)
            if entry.is_symlink():
                real = os.path.realpath(entry.path)
                if not _inside(real, area):
                    raise StarboxError(f"Error: {entry.name} is a link that leaves the readable tree; not copied")
                if os.path.isdir(real):
                    continue  # links to folders are not descended into (no loops, no surprises)
                target = Path(real)
            if entry.is_dir(follow_symlinks=False):
                _copy_tree(target, dst / entry.name, area)
            elif os.path.isfile(target):
                shutil.copyfile(target, dst / entry.name)


@_oserrors
def cp(settings: Settings, user: User, src_name: str | None, to: str | None) -> str:
    src = _node(settings, user, src_name, what="source (from)")
    _must_exist(src)
    if not src.parts:
        raise StarboxError("Error: cannot copy a whole storage tree; copy its folders")
    dst = _destination(settings, user, src, to)
    if os.path.lexists(dst.path) and os.path.isdir(dst.path):
        raise Conflict(NODE_EXISTS)
    real_src = os.path.realpath(src.path)
    if os.path.isdir(real_src) and _inside(os.path.realpath(dst.path), real_src):
        raise StarboxError("Error: cannot copy a directory into itself")
    needed = _tree_size(Path(real_src))  # copies inside storage are not uploads: only the quota applies
    credit = os.path.getsize(dst.path) if os.path.isfile(dst.path) and not os.path.islink(dst.path) else 0
    try:
        held = quota.take(settings, user.name, at_most=needed, at_most_message="", expected=needed, credit=credit)
    except TooLarge as exc:
        raise TooLarge(f"{exc}; the copy needs {needed / MB:.1f} MB") from None
    with held:
        dst.path.parent.mkdir(parents=True, exist_ok=True)
        if os.path.isdir(real_src):
            tmp = dst.path.parent / held.part_name()
            try:
                _copy_tree(Path(real_src), tmp, _readable_area(settings, user, src))
                os.replace(tmp, dst.path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        else:
            with open(real_src, "rb") as fh, _PartFile(dst.path, needed, None, held=held) as part:
                for chunk in iter(functools.partial(fh.read, 1024 * 1024), b""):
                    part.write(chunk)
                part.sync()
                part.commit()
    return f"COMPLETED: copied {_uri_of(user, src)} to {_uri_of(user, dst)}"


def _symlink(path: Path, real_target: str) -> None:
    """A link at `path` to `real_target`, stored relative to the link's own folder: it survives
    moving STARBOX_HOME (a restore elsewhere); mv recomputes it (see _relink)."""
    os.symlink(os.path.relpath(real_target, os.path.realpath(os.path.dirname(path))), path)


def _relink(path: Path, real_target: str) -> None:
    """Point a moved link at the same `real_target` again: its relative target, kept as it was,
    would change meaning at another depth (at another user's file, or at secrets/)."""
    os.unlink(path)
    _symlink(path, real_target)


def _links_below(settings: Settings, n: Node) -> list[tuple[str, str]]:
    """(link path, its real target) for every link in the tree at n (n itself included), each
    target checked to lie in the owner's tree: a move must not carry a link out of it."""
    root = os.path.realpath(storage_home.root(settings, n.owner))
    if os.path.islink(n.path):
        found = [str(n.path)]
    elif os.path.isdir(n.path):
        found = [
            os.path.join(d, f)
            for d, dirs, files in os.walk(n.path)
            for f in dirs + files
            if os.path.islink(os.path.join(d, f))
        ]
    else:
        found = []
    links = []
    for path in found:
        real = os.path.realpath(path)
        if not _inside(real, root):
            raise StarboxError(
                f"Error: {_uri_of(User(n.owner), n)} holds a link that leaves your storage "
                f"({os.path.relpath(path, root)}); remove it first"
            )
        links.append((path, real))
    return links


@_oserrors
def mv(settings: Settings, user: User, src_name: str | None, to: str | None) -> str:
    src = _node(settings, user, src_name, write=True, follow=False, what="source (from)")
    if src.parts in PROTECTED:
        raise Forbidden(NOT_PERMITTED)
    if not os.path.lexists(src.path):
        raise NotFound(NODE_MISSING)
    dst = _destination(settings, user, src, to)
    if dst.path == src.path:
        return f"COMPLETED: {_uri_of(user, src)} is already there"
    if os.path.isdir(dst.path) and not os.path.islink(dst.path):
        raise Conflict(NODE_EXISTS)
    is_link = os.path.islink(src.path)
    if os.path.isdir(src.path) and not is_link and _inside(str(dst.path), str(src.path)):
        raise StarboxError("Error: cannot move a directory into itself")
    # Links anywhere in what moves get their target again, computed for their new place (kept as
    # they were, relative targets at another depth would point elsewhere: at another user's file
    # or at secrets/). A target inside what moves moves with it.
    links = _links_below(settings, src)
    real_src, real_dst = os.path.realpath(src.path), os.path.join(os.path.realpath(dst.path.parent), dst.path.name)
    dst.path.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src.path, dst.path)
    for path, real in links:
        if is_link:
            moved_path = str(dst.path)
        else:
            moved_path = os.path.join(str(dst.path), os.path.relpath(path, str(src.path)))
        if not is_link and _inside(real, real_src):
            rel = os.path.relpath(real, real_src)
            real = real_dst if rel == "." else os.path.join(real_dst, rel)
        _relink(Path(moved_path), real)
    _meta_move(settings, src, dst)
    return f"COMPLETED: moved {_uri_of(user, src)} to {_uri_of(user, dst)}"


@_oserrors
def ln(settings: Settings, user: User, link_name: str | None, target_name: str | None) -> str:
    """Make `link_name` a link to `target_name`; both in the user's own tree."""
    link = _node(settings, user, link_name, write=True, follow=False, what="link name (from)")
    target = _node(settings, user, target_name, what="target (to)")
    if target.owner != user.name:
        raise Forbidden("Error: a link may only point inside your own storage")
    if not link.parts:
        raise Forbidden(NOT_PERMITTED)
    _must_exist(target)
    if os.path.lexists(link.path):
        raise Conflict(NODE_EXISTS)
    link.path.parent.mkdir(parents=True, exist_ok=True)
    # mv rewrites the links it moves, so whatever it does, a link names the same place.
    _symlink(link.path, os.path.realpath(target.path))
    return "OK"


@_oserrors
def tag(settings: Settings, user: User, name: str | None, text: str | None) -> str:
    """Annotate a node; an empty tag clears its tags."""
    n = _node(settings, user, name, write=True)
    _must_exist(n)
    text = (text or "").strip()
    if len(text) > 1000:
        raise StarboxError("Error: a tag may have at most 1000 characters")

    def change(tags):
        if not text:
            tags.pop(n.rel, None)
        elif text not in tags.setdefault(n.rel, []):
            tags[n.rel].append(text)

    _meta_update(settings, n.owner, change)
    return "OK"


@_oserrors
def load(settings: Settings, user: User, name: str | None, endpoint: str | None, is_vospace: bool = False) -> str:
    """Fetch a URL (or, with is_vospace, a storage name) into `name`."""
    if not endpoint or not endpoint.strip():
        raise StarboxError("Error: no endpoint given")
    endpoint = endpoint.strip()
    scheme = urllib.parse.urlsplit(endpoint).scheme.lower()
    if scheme not in ("http", "https"):
        if is_vospace:
            cp(settings, user, endpoint, name)
            return "OK"
        raise StarboxError(
            "Error: the endpoint must be an http:// or https:// URL (or a storage name with is_vospace=True)"
        )
    n = _node(settings, user, name, write=True)
    if not n.parts:
        raise StarboxError("Error: name a file to load into, e.g. vos://data.csv")
    if os.path.isdir(n.path):
        n = _child(n, Path(urllib.parse.urlsplit(endpoint).path).name or "download")
        node(settings, user, n.uri_for(user), write=True)
    limit, message = _upload_limit(settings, user, n)
    # starbox.outbound checks the URL and every redirect before any connection (SSRF)
    with outbound.stream(settings, endpoint, limit=limit, too_large=message, deadline=LOAD_DEADLINE) as chunks:
        n.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(n.path, chunks, limit=limit, limit_message=message)
    return "OK"


# --- staged uploads for /query/import ---------------------------------------------------------


def _append(part: Path, path: Path) -> None:
    """Append a chunk to a staged file; if that fails half-way, the file is cut back as it was."""
    with open(path, "ab") as out, open(part, "rb") as src:
        size = out.tell()
        try:
            shutil.copyfileobj(src, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())
        except BaseException:
            out.truncate(size)
            raise


async def xfer(
    settings: Settings,
    user: User,
    filename: str | None,
    init: bool,
    chunks: AsyncIterable[bytes],
    length: int | None = None,
) -> str:
    """Append one POST's body to the staged file (a new file when `init`). Staged files count
    against the owner's quota (the chunk is reserved before it is read) and live
    staging_ttl_hours after their last chunk."""
    if user.anonymous:
        raise Forbidden("Error: anonymous users cannot upload; log in first")
    try:
        folder = storage_home.staging_dir(settings, user.name)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / storage_home.staged_name(filename)
        old = path.stat().st_size if path.is_file() else 0
        have = 0 if init else old
        cap = settings.max_upload_mb * MB
        message = f"Error: the file is larger than the {settings.max_upload_mb} MB allowed for one upload"
        if have >= cap or (length is not None and have + length > cap):
            raise TooLarge(message)
        with anyio.CancelScope(shield=True):
            held = await anyio.to_thread.run_sync(
                functools.partial(
                    quota.take,
                    settings,
                    user.name,
                    at_most=min(cap - have, XFER_CHUNK_MAX),
                    at_most_message=message,
                    expected=length,
                    credit=old if init else 0,
                )
            )
        try:
            with _PartFile(path, held.bytes, held.message, held=held) as part:
                async for chunk in chunks:
                    part.write(chunk)
                await anyio.to_thread.run_sync(part.sync)
                if init or not path.exists():
                    part.commit()
                else:
                    part.fh.close()
                    await anyio.to_thread.run_sync(_append, part.tmp, path)
                    part.tmp.unlink()
        finally:
            with anyio.CancelScope(shield=True):  # given back after the bytes landed (or went)
                await anyio.to_thread.run_sync(held.release)
    except StarboxError:
        raise
    except OSError as exc:
        raise _oserror(exc) from None
    return "OK"


# --- profiles ---------------------------------------------------------------------------------


def profiles(profile: str | None = None, fmt: str | None = "text"):
    """All profiles as text lines, or one profile as a dict (JSON)."""
    if profile and profile not in ("None",):
        if profile not in PROFILES:
            raise NotFound(f"Error: no such storage profile: {profile}")
        return {"name": profile, "description": PROFILES[profile], "type": "vos", "root": "vos://"}
    if (fmt or "text").lower() == "json":
        return [{"name": k, "description": v} for k, v in PROFILES.items()]
    return "".join(f"{k:>19}   {v}\n" for k, v in PROFILES.items())
