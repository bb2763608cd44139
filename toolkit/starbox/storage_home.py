"""Each user's storage tree on disk: created with the account, removed with it (the tree, the
staged uploads and the quota ledger: a re-created account of the same name starts empty)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from starbox.errors import StarboxError
from starbox.settings import Settings

FOLDERS = ("public", "tmp")
RESERVED_PREFIX = ".starbox-"  # names Starbox keeps for itself, in users' trees and staging
PART_PREFIX = ".starbox-part-"  # temporary files of writes in progress (starbox.storage.quota)


def root(settings: Settings, username: str) -> Path:
    return settings.storage_dir / "users" / username


def create(settings: Settings, username: str) -> Path:
    home = root(settings, username)
    for folder in FOLDERS:
        (home / folder).mkdir(parents=True, exist_ok=True)
    return home


def remove(settings: Settings, username: str) -> None:
    """Everything storage keeps for a user. Signed URLs need nothing here: they name the account's
    uid and session, which the account's removal ends (starbox.storage.signing.check_live)."""
    shutil.rmtree(root(settings, username), ignore_errors=True)
    shutil.rmtree(staging_dir(settings, username), ignore_errors=True)
    for name in (f"{username}.json", f"{username}.lock"):
        (settings.storage_dir / "quota" / name).unlink(missing_ok=True)


def staging_dir(settings: Settings, username: str, purge: bool = True) -> Path:
    """Where `POST /storage/xfer` stages uploads that /query/import and /query/ingest then read.

    Kept outside the user's visible tree, so staged chunks never show in ls; they count against
    the user's quota all the same (starbox.storage.quota). Looking here first deletes what has
    passed its lifetime (purge_staging), so an expired file is never imported.
    """
    folder = settings.storage_dir / "staging" / username
    if purge:
        purge_staging(settings, username)
    return folder


def staged_name(filename: str | None) -> str:
    """The one rule for a staged upload's name, for /storage/xfer that writes it and the MyDB
    imports that read it: the last path component, checked."""
    raw = (filename or "").strip()
    if not raw:
        raise StarboxError("Error: no file name given (X-DL-FileName)")
    if "\x00" in raw or ".." in raw.replace("\\", "/").split("/"):
        raise StarboxError("Error: the file name may not contain '..' or NUL bytes")
    base = raw.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    if base in ("", ".", "..") or base.startswith(RESERVED_PREFIX):
        raise StarboxError(f"Error: {raw!r} is not a usable file name")
    if len(base) > 200:
        raise StarboxError("Error: the file name is too long")
    return base


def staged_path(settings: Settings, username: str, filename: str | None) -> Path:
    """Where the /xfer chunks of `filename` go (staged files past their lifetime are gone first)."""
    return staging_dir(settings, username) / staged_name(filename)


def purge_staging(settings: Settings, username: str) -> int:
    """Delete a user's staged files (and leftovers) staging_ttl_hours after their last write;
    writes in progress (.starbox-part-*) are the quota's business. Returns how many went."""
    folder = settings.storage_dir / "staging" / username
    ttl, now, gone = settings.staging_ttl_hours * 3600.0, time.time(), 0
    if ttl <= 0:
        return 0  # 0: kept until imported or removed
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.name.startswith(PART_PREFIX) or now - entry.stat(follow_symlinks=False).st_mtime <= ttl:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
            gone += 1
        except FileNotFoundError:
            pass  # gone already (imported, or another sweep)
    return gone
