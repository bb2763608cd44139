"""The publishing state under notebooks-versions/.state: its JSON files, the lock, the log.

notebooks-versions/.state/
    history.json         versions and the order they went live (rollback undoes)
    status.json          the last attempt: published, failed (and why), unchanged
    deliveries.sqlite    webhook delivery ids and body digests already handled
    publish.lock         flock: one publish or rollback at a time, across processes
    last-test/           the harness's report.html, junit.xml and executed copies
logs/notebooks-publish.log   one line per step, from the CLI and the service alike
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from starbox.errors import StarboxError
from starbox.settings import Settings

STATE = ".state"
LOG_NAME = "notebooks-publish.log"

Log = Callable[[str], None]


def state_dir(settings: Settings) -> Path:
    return settings.notebooks_versions / STATE


def log_path(settings: Settings) -> Path:
    return settings.log_dir / LOG_NAME


def now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def logger(settings: Settings, echo: Log | None) -> Log:
    def log(message: str) -> None:
        try:
            settings.log_dir.mkdir(parents=True, exist_ok=True)
            with log_path(settings).open("a", encoding="utf-8") as fh:
                fh.write(f"{now()} [{os.getpid()}] {message}\n")
        except OSError:
            pass
        if echo:
            echo(message)

    return log


@contextlib.contextmanager
def locked(settings: Settings, wait: bool = True):
    """One publish or rollback at a time, whichever process runs it (CLI or service)."""
    state_dir(settings).mkdir(parents=True, exist_ok=True)
    fh = open(state_dir(settings) / "publish.lock", "a+")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise StarboxError("another publish or rollback is running; try again when it is done") from None
        yield
    finally:
        fh.close()


def busy(settings: Settings) -> bool:
    """Whether a publish or rollback holds the lock now."""
    path = state_dir(settings) / "publish.lock"
    if not path.exists():
        return False
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
