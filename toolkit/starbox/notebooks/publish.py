"""Publishing lessons: fetch, test, and make them live in one atomic step.

`publish` runs the steps, each in a module named for it: `sources` (where lessons come from,
fetching), `harness` (the test run), `versions` (installing the tree as a read-only version and
swapping `notebooks-latest`, pruning, rollback), `state` (status, history, the lock, the log);
the webhook's checks are in `webhook`. `Background` runs the publishes webhooks start.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starbox import keys
from starbox.errors import StarboxError
from starbox.settings import Settings

from . import versions
from .harness import run_tests
from .sources import fetch, notebooks_in, remote_head, source
from .state import Log, busy, locked, log_path, logger, now, read_json, state_dir, write_json
from .versions import current, remove_tree, rollback

__all__ = ["Outcome", "publish", "ensure_published", "status", "rollback", "current", "Background", "with_overrides"]


@dataclass
class Outcome:
    status: str  # published | failed | unchanged
    reason: str
    version: str | None = None
    commit: str | None = None
    failures: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def _record(settings: Settings, outcome: Outcome, trigger: str, started: str, seconds: float) -> None:
    write_json(
        state_dir(settings) / "status.json",
        {
            "result": outcome.status,
            "reason": outcome.reason,
            "version": outcome.version,
            "commit": outcome.commit,
            "failures": outcome.failures,
            "trigger": trigger,
            "started": started,
            "finished": now(),
            "seconds": round(seconds, 1),
            "source": source(settings),
            "branch": settings.lessons_branch,
        },
    )


def publish(
    settings: Settings,
    *,
    test: bool | None = None,
    trigger: str = "manual",
    force: bool = False,
    jobs: int = 2,
    timeout: int | None = 600,
    echo: Log | None = None,
) -> Outcome:
    """Fetch, optionally test, and make the lessons live. Never publishes a failing set.

    `test` defaults to the lessons_test setting. Without `force`, a commit that is already live
    is not fetched again (result "unchanged"). Every problem (a failing set, a fetch that fails,
    a missing git, a crash) comes back as a failed Outcome, also written to status.json and the
    log; only a publish or rollback already holding the lock makes this wait.
    """
    test = settings.lessons_test if test is None else test
    log = logger(settings, echo)
    settings.notebooks_versions.mkdir(parents=True, exist_ok=True)
    with locked(settings):
        started, t0 = now(), time.monotonic()
        status_file = state_dir(settings) / "status.json"
        write_json(
            status_file,
            {**read_json(status_file, {}), "running": {"since": started, "trigger": trigger, "pid": os.getpid()}},
        )
        log(f"publish ({trigger}) from {source(settings)} branch {settings.lessons_branch}")
        try:
            outcome = _publish_locked(settings, test, force, jobs, timeout, log, trigger)
        except StarboxError as exc:
            outcome = Outcome("failed", str(exc))
        except Exception as exc:  # a bug or a full disk: the reason still reaches `status`
            import traceback

            log(traceback.format_exc().rstrip())
            outcome = Outcome("failed", f"{type(exc).__name__}: {exc} (traceback in {log_path(settings)})")
        logger(settings, None)(f"{outcome.status}: {outcome.reason}")  # the caller reports it
        _record(settings, outcome, trigger, started, time.monotonic() - t0)
        return outcome


def _publish_locked(settings, test, force, jobs, timeout, log, trigger) -> Outcome:
    history = versions.history(settings)
    live = current(settings)
    live_commit = history["versions"].get(live, {}).get("commit") if live else None
    try:
        head = remote_head(settings)
    except StarboxError as exc:
        return Outcome("failed", f"fetch failed: {exc}")
    if head == "":
        return Outcome("failed", f"branch {settings.lessons_branch!r} not found in {source(settings)}")
    if head and head == live_commit and not force:
        return Outcome("unchanged", f"commit {head[:12]} is already live as {live}", live, head)

    incoming = Path(tempfile.mkdtemp(prefix=".incoming-", dir=settings.notebooks_versions))
    try:
        try:
            fetched = fetch(settings, incoming / "tree")
        except StarboxError as exc:
            return Outcome("failed", f"fetch failed: {exc}")
        log(f"fetched {fetched.kind} {fetched.commit[:12]} {fetched.subject}".rstrip())
        if fetched.kind == "folder" and fetched.commit == live_commit and not force:
            return Outcome("unchanged", f"the folder is unchanged since {live}", live, fetched.commit)
        if not notebooks_in(fetched.tree):
            return Outcome(
                "failed",
                f"no notebooks in {source(settings)} ({settings.lessons_branch}); nothing published",
                commit=fetched.commit,
            )
        tested = "not tested" if not test else ""
        if test:
            passed, tested, failures = run_tests(settings, fetched.tree, jobs, timeout, log)
            if not passed:
                return Outcome(
                    "failed",
                    f"not published: {tested}; report: {state_dir(settings) / 'last-test' / 'report.html'}",
                    commit=fetched.commit,
                    failures=failures,
                )
        version = versions.install(settings, fetched.tree, fetched.commit[:7])
        history["versions"][version] = {
            "source": source(settings),
            "branch": settings.lessons_branch,
            "commit": fetched.commit,
            "kind": fetched.kind,
            "subject": fetched.subject,
            "published": now(),
            "trigger": trigger,
            "tested": tested,
        }
        history["live"].append(version)
        versions.prune(settings, history, log)
        versions.save_history(settings, history)
        previous = f"; previous: {live}" if live else ""
        return Outcome("published", f"{version} is live ({tested}){previous}", version, fetched.commit)
    finally:
        if incoming.exists():
            remove_tree(incoming)


def ensure_published(settings: Settings, *, test: bool | None = None, echo: Log | None = None) -> Outcome | None:
    """Publish once when nothing is live yet (`starbox up`, before JupyterLab starts); None when
    something already is."""
    if current(settings) is not None:
        return None
    return publish(settings, test=test, trigger="first start", echo=echo)


def status(settings: Settings) -> dict:
    """Everything `starbox notebooks status` shows, as plain data."""
    history = versions.history(settings)
    last = read_json(state_dir(settings) / "status.json", {})
    running = last.pop("running", None)
    if running and not busy(settings):
        running = None  # the process that wrote it is gone
    live = current(settings)
    return {
        "source": source(settings),
        "branch": settings.lessons_branch,
        "test": settings.lessons_test,
        "live": live,
        "path": str(settings.notebooks_latest),
        "versions": [
            {"version": v, "live": v == live, **history["versions"].get(v, {})} for v in versions.versions(settings)
        ],
        "last": last or None,
        "running": running,
        "log": str(log_path(settings)),
        "webhook": f"{settings.service_url}/hooks/notebooks",
        "secret_file": str(keys.path(settings, keys.WEBHOOK_SECRET)),
    }


class Background:
    """Publishes started by webhooks, one at a time; pushes that arrive meanwhile collapse into
    one more publish (which fetches whatever the branch holds by then)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._again: str | None = None

    def request(self, settings: Settings, trigger: str) -> str:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                merged = self._again is not None
                self._again = trigger
                return "queued behind the running publish" + (" (merged with a queued one)" if merged else "")
            self._thread = threading.Thread(
                target=self._work, args=(settings, trigger), name="lessons-publish", daemon=True
            )
            self._thread.start()
            return "publishing in the background"

    def _work(self, settings: Settings, trigger: str) -> None:
        while True:
            try:
                publish(settings, trigger=trigger)
            except Exception as exc:  # a thread has nobody to raise to: log it, keep it in status
                logger(settings, None)(f"publish ({trigger}) crashed: {type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    _record(settings, Outcome("failed", f"{type(exc).__name__}: {exc}"), trigger, now(), 0)
            with self._lock:
                if self._again is None:
                    self._thread = None
                    return
                trigger, self._again = self._again, None

    def join(self, timeout: float | None = None) -> None:
        thread = self._thread
        if thread is not None:
            thread.join(timeout)


def with_overrides(settings: Settings, repo: str | None = None, branch: str | None = None) -> Settings:
    changes: dict[str, Any] = {k: v for k, v in (("lessons_repo", repo), ("lessons_branch", branch)) if v}
    return dataclasses.replace(settings, **changes) if changes else settings
