"""Each user's storage tree on disk: created with the account, removed with it (the tree, the
staged uploads and the quota ledger: a re-created account of the same name starts empty)."""

from __future__ import annotations

import shutil
from pathlib import Path

from starbox.settings import Settings

FOLDERS = ("public", "tmp")


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


def staging_dir(settings: Settings, username: str) -> Path:
    """Where `POST /storage/xfer` stages uploads that /query/import and /query/ingest then read.

    Kept outside the user's visible tree, so staged chunks never count as files nor show in ls.
    """
    return settings.storage_dir / "staging" / username
