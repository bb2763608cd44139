"""Publishing lessons: fetch, test, and swap `notebooks-latest` in one atomic step.

Layout under $STARBOX_HOME::

    notebooks-latest -> notebooks-versions/20250301T101500123Z-1a2b3c4   (a symlink)
    notebooks-versions/
        20250301T101500123Z-1a2b3c4/   one complete, read-only lesson set per version
        .incoming-*/                   a fetch in progress (never what the symlink points at)
        .state/
            history.json               versions and the order they went live (rollback undoes)
            status.json                the last attempt: published, failed (and why), unchanged
            deliveries.sqlite          webhook delivery ids and body digests already handled
            publish.lock               flock: one publish or rollback at a time, across processes
            last-test/                 the harness's report.html, junit.xml and executed copies
    logs/notebooks-publish.log         one line per step, from the CLI and the service alike

A version folder gets its final name only once it is complete (a rename of the fetched tree),
and `notebooks-latest` moves to it with ``os.replace`` of a new symlink, so a reader sees the old
set or the new one, never a mix, a half-copied folder or no folder. The previous versions stay;
rollback points the symlink back.

Where lessons come from (``lessons_repo``): a git URL, or a local path to a git repository
(both cloned at ``lessons_branch``); a local folder that is not a repository is copied as it is;
empty means this project's own ``lessons/`` folder, copied from the working tree.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

from starbox import keys
from starbox.errors import StarboxError
from starbox.settings import Settings

KEEP = 5  # versions kept besides the live one: the last KEEP that were live, and the KEEP newest
# UTC time (ms) and commit; also the seconds-only, Z-less stamps of starbox.jupyter.workspace's first copy.
VERSION_RE = re.compile(r"^\d{8}T\d{6}(?:\d{3})?Z?-[0-9a-z]+$")
STATE = ".state"
GIT_TIMEOUT = 300
LOG_NAME = "notebooks-publish.log"
WEBHOOK_SECRET = "webhook.secret"

Log = Callable[[str], None]


# --- where things live -------------------------------------------------------------------------

def state_dir(settings: Settings) -> Path:
    return settings.notebooks_versions / STATE


def log_path(settings: Settings) -> Path:
    return settings.log_dir / LOG_NAME


def webhook_secret(settings: Settings, create: bool = True) -> str | None:
    """The shared secret GitHub signs push events with (made once, mode 0600, by the admin's
    `starbox notebooks webhook`). `create=False` (the webhook itself): None when there is none,
    so no request from outside makes one."""
    if not create and not (settings.secrets_dir / WEBHOOK_SECRET).is_file():
        return None
    return keys._secret(settings, WEBHOOK_SECRET)


def source(settings: Settings) -> str:
    """The repository or folder lessons are published from."""
    return settings.lessons_repo or str(settings.project_root / "lessons")


def is_url(repo: str) -> bool:
    return bool(re.match(r"^[a-z][a-z0-9+.-]*://", repo, re.I)) or bool(re.match(r"^[\w.-]+@[\w.-]+:", repo))


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _logger(settings: Settings, echo: Log | None) -> Log:
    def log(message: str) -> None:
        try:
            settings.log_dir.mkdir(parents=True, exist_ok=True)
            with log_path(settings).open("a", encoding="utf-8") as fh:
                fh.write(f"{_now()} [{os.getpid()}] {message}\n")
        except OSError:
            pass
        if echo:
            echo(message)
    return log


@contextlib.contextmanager
def _locked(settings: Settings, wait: bool = True):
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


# --- versions and the symlink ------------------------------------------------------------------

def current(settings: Settings) -> str | None:
    """The live version's id, or None when nothing is published."""
    link = settings.notebooks_latest
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return None
    except OSError:  # a real folder (not ours): live, but not a version we can name
        return "(unmanaged folder)" if link.is_dir() else None
    return Path(target).name


def versions(settings: Settings) -> list[str]:
    """Version ids on disk, oldest first (ids sort by publication time)."""
    try:
        names = os.listdir(settings.notebooks_versions)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if VERSION_RE.match(n) and (settings.notebooks_versions / n).is_dir())


def _next_stamp(settings: Settings) -> str:
    """A UTC time stamp in milliseconds, later than every version on disk, so ids sort in the
    order they were published even within one second or after the clock stepped back."""
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    newest = [v for v in versions(settings) if re.match(r"^\d{8}T\d{9}Z", v)]
    if newest:
        last = datetime.strptime(newest[-1][:18], "%Y%m%dT%H%M%S%f")
        now = max(now, last + timedelta(milliseconds=1))
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z"


def _history(settings: Settings) -> dict:
    data = _read_json(state_dir(settings) / "history.json", {})
    data.setdefault("live", [])
    data.setdefault("versions", {})
    return data


def _swap(settings: Settings, version: str) -> None:
    """Point notebooks-latest at `version` in one step: a new symlink renamed over the old one."""
    link = settings.notebooks_latest
    target = settings.notebooks_versions / version
    if not target.is_dir():
        raise StarboxError(f"version {version} is not on disk")
    relative = os.path.relpath(target, link.parent)
    if link.is_dir() and not link.is_symlink():
        # A plain folder from before publishing existed: keep it as a version, then link.
        legacy = settings.notebooks_versions / f"{_next_stamp(settings)}-legacy"
        os.rename(link, legacy)
    tmp = link.with_name(f".{link.name}.{secrets.token_hex(6)}")
    os.symlink(relative, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _make_read_only(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o444)
        os.chmod(dirpath, 0o555)


def _remove_tree(path: Path) -> None:
    """rmtree for read-only version folders."""
    def retry(func, p, _exc_info):
        parent = os.path.dirname(p)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o755)
            if not os.path.islink(p):
                os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        func(p)

    for dirpath, _dirs, _files in os.walk(path):
        with contextlib.suppress(OSError):
            os.chmod(dirpath, 0o755)
    shutil.rmtree(path, onerror=retry)  # onerror: Python 3.11


def _prune(settings: Settings, history: dict, log: Log) -> None:
    live = current(settings)
    on_disk = versions(settings)
    keep = set(history["live"][-(KEEP + 1):]) | set(on_disk[-(KEEP + 1):]) | {live}
    for v in on_disk:
        if v not in keep:
            _remove_tree(settings.notebooks_versions / v)
            history["versions"].pop(v, None)
            log(f"removed old version {v}")
    history["live"] = [v for v in history["live"] if (settings.notebooks_versions / v).is_dir()]
    for name in os.listdir(settings.notebooks_versions):
        if name.startswith(".incoming-"):  # left by a publish that died; we hold the lock
            _remove_tree(settings.notebooks_versions / name)


# --- fetching --------------------------------------------------------------------------------

@dataclass
class Fetched:
    tree: Path
    commit: str  # a git sha, or a content digest for a plain folder
    subject: str = ""
    kind: str = "git"  # git | folder


def _git(*args: str, cwd: Path | None = None, timeout: float = GIT_TIMEOUT) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise StarboxError("git is not installed; install it (apt-get install git) to publish lessons") from None
    except subprocess.TimeoutExpired:
        raise StarboxError(f"git {args[0]} took longer than {timeout:.0f} s") from None
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("warning:")]
        raise StarboxError(f"git {args[0]} failed: {lines[-1] if lines else f'exit status {proc.returncode}'}")
    return proc.stdout.strip()


def _git_url(repo: str) -> str:
    if is_url(repo):
        return repo
    return Path(repo).expanduser().resolve().as_uri()  # file://: --depth works, hooks do not run


def _is_git_repo(path: Path) -> bool:
    """A repository whose top level (or bare directory) is `path` itself, not a folder inside one."""
    if not path.is_dir():
        return False
    if (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir()):
        return True
    return False


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", ".ipynb_checkpoints"))
        for f in sorted(filenames):
            p = Path(dirpath, f)
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            with contextlib.suppress(OSError):
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def is_git_source(settings: Settings) -> bool:
    repo = source(settings)
    return is_url(repo) or _is_git_repo(Path(repo).expanduser())


def remote_head(settings: Settings) -> str | None:
    """The commit the configured branch points at now, without fetching it: None for a plain
    folder, "" when the branch does not exist."""
    if not is_git_source(settings):
        return None
    out = _git("ls-remote", "--", _git_url(source(settings)), f"refs/heads/{settings.lessons_branch}", timeout=60)
    return out.split()[0] if out else ""


def fetch(settings: Settings, dest: Path) -> Fetched:
    """Fetch the configured lessons into `dest` (which must not exist)."""
    repo = source(settings)
    local = None if is_url(repo) else Path(repo).expanduser()
    if local is not None and not local.exists():
        raise StarboxError(f"lessons repository {repo} does not exist (setting lessons_repo)")
    if local is not None and not _is_git_repo(local):
        shutil.copytree(local, dest, symlinks=True, ignore=shutil.ignore_patterns(".git", ".ipynb_checkpoints"))
        return Fetched(dest, _tree_digest(dest)[:12], "", "folder")
    branch = settings.lessons_branch
    try:
        _git("clone", "--quiet", "--depth", "1", "--single-branch", "--branch", branch, "--no-tags",
             "--", _git_url(repo), str(dest))
    except StarboxError as exc:
        if "not found" in str(exc) and "branch" in str(exc).lower():
            raise StarboxError(f"branch {branch!r} not found in {repo}") from None
        raise
    commit = _git("rev-parse", "HEAD", cwd=dest)
    subject = _git("log", "-1", "--format=%s", cwd=dest)
    _remove_tree(dest / ".git")
    return Fetched(dest, commit, subject, "git")


def _notebooks_in(root: Path) -> list[Path]:
    return [p for p in root.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]


# --- testing ----------------------------------------------------------------------------------

TEST_ACCOUNT = "nbtest_bot"  # the Starbox account lesson tests run as (like Rubin's mobu bot users)
PRERUN = """\
# Written by starbox.notebooks.publish: run in each kernel before the first cell.
import os as _os
_os.environ.update({env!r})
del _os
"""


@contextlib.contextmanager
def harness_login(settings: Settings, workdir: Path, log: Log):
    """A prerun file for the harness: kernels talk to this appliance, with a private HOME (no saved
    ~/.datalab login of whoever runs the service), logged in as a fresh test account.

    The account (made the first time) is emptied before every run, so each test starts with an
    empty MyDB, no jobs and empty storage, the way a new user does; its token is revoked
    afterwards. Without an admin connection (no database here) kernels run anonymously. Yields
    the prerun file's path, 0600: it holds the token.
    """
    home = workdir / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {"STARBOX_URL": settings.service_url, "HOME": str(home)}
    token = None
    try:
        from psycopg import sql

        from starbox import accounts, database, storage_home

        with database.connect_admin(settings) as conn:
            row = conn.execute("SELECT uid FROM starbox.accounts WHERE username = %s", (TEST_ACCOUNT,)).fetchone()
            if row is None:  # its password is thrown away: it only ever uses tokens issued here
                user = accounts.add(conn, settings, TEST_ACCOUNT, secrets.token_urlsafe(24))
            else:  # empty its MyDB and jobs (the role stays: the service may pool its sessions)
                user = accounts.User(TEST_ACCOUNT, row[0])
                schema = sql.Identifier(accounts.schema_name(TEST_ACCOUNT))
                with conn.transaction():
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))
                    conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                        schema, sql.Identifier(accounts.role_name(TEST_ACCOUNT))))
                    conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema))
                    conn.execute("DELETE FROM starbox.jobs WHERE owner = %s", (TEST_ACCOUNT,))
            storage_home.remove(settings, TEST_ACCOUNT)
            storage_home.create(settings, TEST_ACCOUNT)
            token = accounts.issue_token(conn, user)
        env["STARBOX_TOKEN"] = token
        log(f"notebooks run as the test account {TEST_ACCOUNT}")
    except Exception as exc:  # no database (or no admin rights): anonymous still reads catalogs
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        log(f"notebooks run anonymously (no test account: {why})")
    prerun = workdir / "prerun.py"
    fd = os.open(prerun, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(PRERUN.format(env=env))
    try:
        yield prerun
    finally:
        prerun.unlink(missing_ok=True)
        if token:
            with contextlib.suppress(Exception):
                from starbox import accounts, database

                with database.connect_admin(settings) as conn:
                    accounts.logout(conn, token)


def _test(settings: Settings, tree: Path, jobs: int, timeout: int | None, log: Log) -> tuple[bool, str, list[dict]]:
    """Run the harness on a scratch copy (notebooks may write files; those must not be published)."""
    from . import report
    from .runner import run

    report_dir = state_dir(settings) / "last-test"
    if report_dir.exists():
        _remove_tree(report_dir)
    report_dir.mkdir(parents=True)
    scratch = Path(tempfile.mkdtemp(prefix="test-", dir=state_dir(settings)))
    try:
        copy = scratch / "lessons"
        shutil.copytree(tree, copy, symlinks=True)
        root = copy.resolve()  # what the harness's paths are relative to
        for dirpath, _d, filenames in os.walk(copy):  # the copy is writable even if the source is not
            os.chmod(dirpath, 0o755)
            for f in filenames:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(dirpath, f), 0o644)
        log(f"testing {len(_notebooks_in(copy))} notebook file(s) with the harness (--jobs {jobs})")
        with harness_login(settings, scratch, log) as prerun:
            result = run([copy], jobs=jobs, timeout=timeout, prerun=prerun, keep_executed=report_dir / "executed")
        report.write_junit(result, report_dir / "junit.xml")
        report.write_html(result, report_dir / "report.html")
    finally:
        _remove_tree(scratch)
    def name(r) -> str:  # relative to the lesson set, whatever the harness's working folder
        try:
            return Path(r.path).relative_to(root).as_posix()
        except ValueError:
            return r.notebook

    failures = [{"notebook": name(r), "status": r.status, "cell": r.failed_cell, "error": r.error}
                for r in result.failed]
    summary = report.summary_line(result)
    if not result.results:
        return True, "no notebooks to test (all excluded)", []
    if result.ok:
        return True, summary, []
    first = "; ".join(
        f"{f['notebook']}: {f['status']}" + (f" in cell {f['cell']}" if f["cell"] is not None else "")
        + (f" ({f['error'].splitlines()[0]})" if f["error"] else "")
        for f in failures[:3])
    more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
    return False, f"{len(failures)} of {len(result.results)} notebooks failed: {first}{more}", failures


# --- publish and rollback -----------------------------------------------------------------------

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
    _write_json(state_dir(settings) / "status.json", {
        "result": outcome.status, "reason": outcome.reason, "version": outcome.version, "commit": outcome.commit,
        "failures": outcome.failures, "trigger": trigger, "started": started, "finished": _now(),
        "seconds": round(seconds, 1), "source": source(settings), "branch": settings.lessons_branch,
    })


def publish(settings: Settings, *, test: bool | None = None, trigger: str = "manual", force: bool = False,
            jobs: int = 2, timeout: int | None = 600, echo: Log | None = None) -> Outcome:
    """Fetch, optionally test, and make the lessons live. Never publishes a failing set.

    `test` defaults to the lessons_test setting. Without `force`, a commit that is already live
    is not fetched again (result "unchanged"). Every problem (a failing set, a fetch that fails,
    a missing git, a crash) comes back as a failed Outcome, also written to status.json and the
    log; only a publish or rollback already holding the lock makes this wait.
    """
    test = settings.lessons_test if test is None else test
    log = _logger(settings, echo)
    settings.notebooks_versions.mkdir(parents=True, exist_ok=True)
    with _locked(settings):
        started, t0 = _now(), time.monotonic()
        status_file = state_dir(settings) / "status.json"
        _write_json(status_file, {**_read_json(status_file, {}), "running": {
            "since": started, "trigger": trigger, "pid": os.getpid()}})
        log(f"publish ({trigger}) from {source(settings)} branch {settings.lessons_branch}")
        try:
            outcome = _publish_locked(settings, test, force, jobs, timeout, log, trigger)
        except StarboxError as exc:
            outcome = Outcome("failed", str(exc))
        except Exception as exc:  # a bug or a full disk: the reason still reaches `status`
            import traceback

            log(traceback.format_exc().rstrip())
            outcome = Outcome("failed", f"{type(exc).__name__}: {exc} (traceback in {log_path(settings)})")
        _logger(settings, None)(f"{outcome.status}: {outcome.reason}")  # the caller reports it
        _record(settings, outcome, trigger, started, time.monotonic() - t0)
        return outcome


def _publish_locked(settings, test, force, jobs, timeout, log, trigger) -> Outcome:
    history = _history(settings)
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
        if not _notebooks_in(fetched.tree):
            return Outcome("failed", f"no notebooks in {source(settings)} ({settings.lessons_branch}); "
                                     "nothing published", commit=fetched.commit)
        tested = "not tested" if not test else ""
        if test:
            passed, tested, failures = _test(settings, fetched.tree, jobs, timeout, log)
            if not passed:
                return Outcome("failed", f"not published: {tested}; report: "
                                         f"{state_dir(settings) / 'last-test' / 'report.html'}",
                               commit=fetched.commit, failures=failures)
        version = f"{_next_stamp(settings)}-{fetched.commit[:7]}"
        _make_read_only(fetched.tree)
        os.chmod(fetched.tree, 0o755)  # moving a folder to another parent rewrites its '..' entry
        os.rename(fetched.tree, settings.notebooks_versions / version)  # complete under its final name
        os.chmod(settings.notebooks_versions / version, 0o555)
        _swap(settings, version)
        history["versions"][version] = {
            "source": source(settings), "branch": settings.lessons_branch, "commit": fetched.commit,
            "kind": fetched.kind, "subject": fetched.subject, "published": _now(), "trigger": trigger,
            "tested": tested,
        }
        history["live"].append(version)
        _prune(settings, history, log)
        _write_json(state_dir(settings) / "history.json", history)
        previous = f"; previous: {live}" if live else ""
        return Outcome("published", f"{version} is live ({tested}){previous}", version, fetched.commit)
    finally:
        if incoming.exists():
            _remove_tree(incoming)


def rollback(settings: Settings, to: str | None = None, echo: Log | None = None) -> tuple[str | None, str]:
    """Make the version that was live before the current one live again (or `to`).

    Returns (from, to). Plain rollbacks undo publishes one at a time.
    """
    log = _logger(settings, echo)
    with _locked(settings):
        history = _history(settings)
        live = current(settings)
        on_disk = set(versions(settings))
        if to:
            if to not in on_disk:
                raise StarboxError(f"no version {to}; `starbox notebooks status` lists them")
            target = to
            history["live"].append(to)
        else:
            stack = [v for v in history["live"] if v in on_disk]
            if live in stack:
                stack = stack[: len(stack) - 1 - stack[::-1].index(live)]  # drop live and what came after
            if not stack:
                raise StarboxError("no earlier version to roll back to"
                                   + (f" ({live} is the oldest kept)" if live else " (nothing is published)"))
            target = stack[-1]
            history["live"] = stack
        _swap(settings, target)
        _write_json(state_dir(settings) / "history.json", history)
        log(f"rollback: {live} -> {target}")
        status_file = state_dir(settings) / "status.json"
        _write_json(status_file, {**_read_json(status_file, {}), "rollback": {
            "from": live, "to": target, "at": _now()}})
        return live, target


def ensure_published(settings: Settings, echo: Log | None = None) -> Outcome | None:
    """Publish once when nothing is live yet (for `starbox up`); None when something already is."""
    if current(settings) is not None:
        return None
    return publish(settings, trigger="first start", echo=echo)


def status(settings: Settings) -> dict:
    """Everything `starbox notebooks status` shows, as plain data."""
    history = _history(settings)
    last = _read_json(state_dir(settings) / "status.json", {})
    running = last.pop("running", None)
    if running and not busy(settings):
        running = None  # the process that wrote it is gone
    live = current(settings)
    return {
        "source": source(settings), "branch": settings.lessons_branch, "test": settings.lessons_test,
        "live": live, "path": str(settings.notebooks_latest),
        "versions": [{"version": v, "live": v == live, **history["versions"].get(v, {})}
                     for v in versions(settings)],
        "last": last or None, "running": running,
        "log": str(log_path(settings)), "webhook": f"{settings.service_url}/hooks/notebooks",
        "secret_file": str(settings.secrets_dir / WEBHOOK_SECRET),
    }


# --- the webhook -------------------------------------------------------------------------------

def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_ok(settings: Settings, body: bytes, header: str | None) -> bool:
    """X-Hub-Signature-256 check, constant-time."""
    if not header:
        return False
    return hmac.compare_digest(sign(webhook_secret(settings), body).encode(), header.strip().encode())


def repo_key(url: str) -> tuple[str, str] | None:
    """(host, owner/name) of a hosting URL, lower case, .git dropped; None if it has no such shape."""
    url = url.strip()
    m = re.match(r"^[\w.-]+@([\w.-]+):(.+)$", url)  # scp-like git@github.com:owner/name.git
    if m:
        host, path = m.group(1), m.group(2)
    else:
        parts = urlsplit(url)
        if not parts.scheme or not parts.hostname:
            return None
        host, path = parts.hostname, parts.path
    path = path.strip("/").removesuffix(".git").lower()
    segments = [s for s in path.split("/") if s]
    if len(segments) < 2:
        return None
    return host.lower(), "/".join(segments[-2:])


def repository_matches(settings: Settings, repository: dict) -> tuple[bool, str]:
    """Whether a push event's repository is the configured one; and what was expected.

    With a URL setting the payload must name the same owner/name (full_name, or any of its clone,
    ssh, git or html URLs). A local path has no GitHub identity to compare, so any repository is
    accepted: the shared secret already proves the sender, and the branch must still match.
    """
    repo = source(settings)
    if not is_url(repo):
        return True, "any repository (lessons_repo is a local path)"
    key = repo_key(repo)
    if key is None:
        return True, "any repository (lessons_repo has no owner/name)"
    host, name = key
    if not isinstance(repository, dict):
        return False, name
    if str(repository.get("full_name", "")).lower() == name:
        return True, name
    for field_name in ("clone_url", "ssh_url", "git_url", "html_url", "url", "svn_url"):
        value = repository.get(field_name)
        if isinstance(value, str) and repo_key(value) == key:
            return True, name
    return False, name


def remember_delivery(settings: Settings, delivery: str, digest: str) -> bool:
    """Record a verified delivery; False when its id (or the same signed body) was seen before."""
    path = state_dir(settings) / "deliveries.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path, timeout=30, isolation_level=None)) as db:
        db.execute("CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, digest TEXT UNIQUE, "
                   "received REAL NOT NULL)")
        try:
            db.execute("INSERT INTO deliveries VALUES (?, ?, ?)", (delivery, digest, time.time()))
        except sqlite3.IntegrityError:
            return False
        db.execute("DELETE FROM deliveries WHERE id NOT IN "
                   "(SELECT id FROM deliveries ORDER BY received DESC LIMIT 10000)")
    return True


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
            self._thread = threading.Thread(target=self._work, args=(settings, trigger),
                                            name="lessons-publish", daemon=True)
            self._thread.start()
            return "publishing in the background"

    def _work(self, settings: Settings, trigger: str) -> None:
        while True:
            try:
                publish(settings, trigger=trigger)
            except Exception as exc:  # a thread has nobody to raise to: log it, keep it in status
                _logger(settings, None)(f"publish ({trigger}) crashed: {type(exc).__name__}: {exc}")
                with contextlib.suppress(Exception):
                    _record(settings, Outcome("failed", f"{type(exc).__name__}: {exc}"), trigger, _now(), 0)
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
    changes = {k: v for k, v in (("lessons_repo", repo), ("lessons_branch", branch)) if v}
    return dataclasses.replace(settings, **changes) if changes else settings
