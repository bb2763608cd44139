"""Testing a lesson set before it is published: the harness runs every notebook on a scratch
copy, logged in as a fresh test account of this appliance."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tempfile
from pathlib import Path

from starbox.settings import Settings

from .sources import notebooks_in
from .state import Log, state_dir
from .versions import remove_tree

TEST_ACCOUNT = "nbtest_bot"  # the Starbox account lesson tests run as (like Rubin's mobu bot users)
PRERUN = """\
# Written by starbox.notebooks.harness: run in each kernel before the first cell.
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
        from starbox import accounts, database, jobs, storage_home

        with database.connect_admin(settings) as conn:
            uid = accounts.uid_of(conn, TEST_ACCOUNT)
            if uid is None:  # its password is thrown away: it only ever uses tokens issued here
                user = accounts.add(conn, settings, TEST_ACCOUNT, secrets.token_urlsafe(24))
            else:  # empty its MyDB and jobs
                user = accounts.User(TEST_ACCOUNT, uid)
                accounts.empty_mydb(conn, TEST_ACCOUNT)
                jobs.remove_owner(conn, TEST_ACCOUNT, settings.home / "jobs")
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


def run_tests(settings: Settings, tree: Path, jobs: int, timeout: int | None, log: Log) -> tuple[bool, str, list[dict]]:
    """Run the harness on a scratch copy (notebooks may write files; those must not be published)."""
    from . import report
    from .runner import run

    report_dir = state_dir(settings) / "last-test"
    if report_dir.exists():
        remove_tree(report_dir)
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
        log(f"testing {len(notebooks_in(copy))} notebook file(s) with the harness (--jobs {jobs})")
        with harness_login(settings, scratch, log) as prerun:
            result = run([copy], jobs=jobs, timeout=timeout, prerun=prerun, keep_executed=report_dir / "executed")
        report.write_junit(result, report_dir / "junit.xml")
        report.write_html(result, report_dir / "report.html")
    finally:
        remove_tree(scratch)

    def name(r) -> str:  # relative to the lesson set, whatever the harness's working folder
        try:
            return Path(r.path).relative_to(root).as_posix()
        except ValueError:
            return r.notebook

    failures = [
        {"notebook": name(r), "status": r.status, "cell": r.failed_cell, "error": r.error} for r in result.failed
    ]
    summary = report.summary_line(result)
    if not result.results:
        return True, "no notebooks to test (all excluded)", []
    if result.ok:
        return True, summary, []
    first = "; ".join(
        f"{f['notebook']}: {f['status']}"
        + (f" in cell {f['cell']}" if f["cell"] is not None else "")
        + (f" ({str(f['error']).splitlines()[0]})" if f["error"] else "")
        for f in failures[:3]
    )
    more = f"; and {len(failures) - 3} more" if len(failures) > 3 else ""
    return False, f"{len(failures)} of {len(result.results)} notebooks failed: {first}{more}", failures
