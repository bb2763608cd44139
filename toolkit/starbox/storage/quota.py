"""Storage quotas, reserved atomically, and the lifetime of staged uploads.

A write into a user's storage (an upload, a copy, a query result, a /load, a staged /xfer chunk)
first *reserves* its bytes: under a per-user file lock (so several threads, the service and an
in-process toolkit all see one another), what is on disk plus what other writes in progress hold
must leave room. The reservation is taken before the first byte is read, for the declared size or
the most the write may grow to, and given back when the write ends (its file then counts on its
own) or fails. A write's temporary file carries its reservation's id, so it is counted once.

Reservations live in ``$STARBOX_HOME/storage/quota/<user>.json`` with the process that holds
them: one whose process died (a crash, kill -9) is dropped the next time anyone looks, and so is
its temporary file, after an hour.

What counts: the user's tree and their staged uploads (``POST /storage/xfer``). Staged files are
deleted ``staging_ttl_hours`` after their last write: when the user touches staging, and for
everyone at most every few minutes on any storage write (the first one after a start, too).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import psutil

from starbox import storage_home
from starbox.errors import TooLarge
from starbox.settings import Settings

MB = 1024 * 1024
PART_PREFIX = storage_home.PART_PREFIX  # temporary files of writes (paths imports it from here)
ORPHAN_AGE = 3600.0  # s before a dead write's temporary file is removed
SWEEP_EVERY = 600.0  # s between sweeps of everyone's expired staged files
_sweep_lock = threading.Lock()
_last_sweep = 0.0


def _ledger_dir(settings: Settings) -> Path:
    return settings.storage_dir / "quota"  # storage_home.remove() deletes <user>.json and .lock


@contextmanager
def _locked(settings: Settings, username: str):
    folder = _ledger_dir(settings)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{username}.lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # one open file per caller: excludes threads and processes
        try:
            yield folder / f"{username}.json"
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _me() -> tuple[int, float]:
    pid = os.getpid()
    return pid, round(psutil.Process(pid).create_time(), 2)


def _alive(entry: dict) -> bool:
    try:
        return round(psutil.Process(int(entry["pid"])).create_time(), 2) == float(entry["started"])
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False  # gone, or its pid now belongs to another process


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and _alive(v)} if isinstance(data, dict) else {}


def _write(path: Path, ledger: dict) -> None:
    if not ledger:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps(ledger))
    os.replace(tmp, path)


def part_id(name: str) -> str | None:
    """The reservation id in a temporary file's name (.starbox-part-<id>-...), if any."""
    if not name.startswith(PART_PREFIX):
        return None
    rid, sep, _ = name[len(PART_PREFIX) :].partition("-")
    return rid if sep else None


def _measure(settings: Settings, username: str, live: dict | None, clean: bool = False) -> int:
    """Bytes in the user's tree and staging; temporary files of live reservations are left out
    (their reservation counts for them). With `clean`, a dead write's old temporary file goes."""
    total, now = 0, time.time()
    for top in (storage_home.root(settings, username), storage_home.staging_dir(settings, username, purge=False)):
        for folder, dirs, files in os.walk(top):
            for name in list(dirs):
                rid = part_id(name)
                if rid is not None and live is not None and rid in live:
                    dirs.remove(name)  # a copy in progress: its reservation counts for it
            for name in files:
                path = os.path.join(folder, name)
                rid = part_id(name)
                if rid is not None and live is not None and rid in live:
                    continue
                try:
                    st = os.lstat(path)
                except OSError:
                    continue
                if clean and rid is not None and live is not None and now - st.st_mtime > ORPHAN_AGE:
                    Path(path).unlink(missing_ok=True)
                    continue
                total += st.st_size
    return total


def usage(settings: Settings, username: str) -> int:
    """Bytes a user's storage holds now (tree and staged uploads; links count as themselves)."""
    return _measure(settings, username, _read(_ledger_dir(settings) / f"{username}.json"))


def reserved(settings: Settings, username: str) -> int:
    return sum(int(e["bytes"]) for e in _read(_ledger_dir(settings) / f"{username}.json").values())


def free(settings: Settings, username: str, credit: int = 0) -> int:
    """An estimate (no lock) of what a new write may take; take() decides."""
    allowed = settings.storage_quota_mb * MB
    return max(allowed - usage(settings, username) - reserved(settings, username) + credit, 0)


def quota_message(settings: Settings, used: int, held: int, room: int) -> str:
    allowed = settings.storage_quota_mb * MB
    held_text = f", {held / MB:.1f} MB held by uploads in progress" if held else ""
    return (
        f"Error: storage quota exceeded: {used / MB:.1f} MB used of {allowed / MB:.1f} MB allowed"
        f"{held_text} ({room / MB:.1f} MB free); staged uploads count too"
    )


class Reservation:
    """Bytes held for one write; `release()` (or leaving the `with` block) gives them back."""

    def __init__(self, settings: Settings, username: str, rid: str, size: int, message: str):
        self.settings, self.username, self.id, self.bytes, self.message = settings, username, rid, size, message
        self._done = False

    def part_name(self) -> str:
        """A temporary file name that usage() knows belongs to this reservation."""
        return f"{PART_PREFIX}{self.id}-{secrets.token_hex(6)}"

    def release(self) -> None:
        if self._done:
            return
        self._done = True
        with _locked(self.settings, self.username) as path:
            ledger = _read(path)
            ledger.pop(self.id, None)
            _write(path, ledger)

    def __enter__(self) -> "Reservation":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def take(
    settings: Settings,
    username: str,
    *,
    at_most: int,
    at_most_message: str,
    expected: int | None = None,
    credit: int = 0,
) -> Reservation:
    """Reserve room for one write of `expected` bytes (or, unknown, as much as is free up to
    `at_most`), or refuse with 413 saying what is used, held and free. `credit` is what the
    write frees when it lands (the old size of a file it replaces)."""
    sweep(settings)
    storage_home.purge_staging(settings, username)
    with _locked(settings, username) as path:
        ledger = _read(path)
        held = sum(int(e["bytes"]) for e in ledger.values())
        used = _measure(settings, username, ledger, clean=True)
        room = max(settings.storage_quota_mb * MB - used - held + credit, 0)
        if expected is not None and expected > at_most:
            raise TooLarge(at_most_message)
        if expected is not None and expected > room:
            raise TooLarge(quota_message(settings, used, held, room))
        if expected is not None:
            size, message = expected, at_most_message
        elif room < at_most:
            size, message = room, quota_message(settings, used, held, room)
        else:
            size, message = at_most, at_most_message
        rid = secrets.token_hex(6)
        pid, started = _me()
        ledger[rid] = {"bytes": size, "pid": pid, "started": started, "at": time.time()}
        _write(path, ledger)
    return Reservation(settings, username, rid, size, message)


class Allowance(int):
    """The bytes a write may take (an int, what callers compare sizes with), which also knows
    whose quota it comes from: write_atomic() reserves them before writing, so a writer that asks
    ops._upload_limit() for its limit cannot skip the reservation."""

    settings: Settings
    username: str
    cap: int
    cap_message: str
    credit: int

    def __new__(cls, value: int, settings: Settings, username: str, cap: int, cap_message: str, credit: int):
        self = super().__new__(cls, max(int(value), 0))
        self.settings, self.username, self.cap, self.cap_message, self.credit = (
            settings,
            username,
            cap,
            cap_message,
            credit,
        )
        return self

    def reserve(self, expected: int | None = None) -> Reservation:
        return take(
            self.settings,
            self.username,
            at_most=self.cap,
            at_most_message=self.cap_message,
            expected=expected,
            credit=self.credit,
        )


# --- staged uploads -----------------------------------------------------------------------------


def sweep(settings: Settings, force: bool = False) -> None:
    """Everyone's expired staged files, at most every SWEEP_EVERY seconds per process."""
    global _last_sweep
    with _sweep_lock:
        if not force and time.monotonic() - _last_sweep < SWEEP_EVERY and _last_sweep:
            return
        _last_sweep = time.monotonic()
    try:
        users = [p.name for p in (settings.storage_dir / "staging").iterdir()]
    except OSError:
        return
    for name in users:
        storage_home.purge_staging(settings, name)
