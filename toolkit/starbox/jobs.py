"""Asynchronous query jobs: rows in starbox.jobs, run by a bounded pool of worker threads.

Phases are Data Lab's (and UWS's): QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED. A result is a
file under $STARBOX_HOME/jobs (or a MyDB table, or a file in the user's storage for out=vos://).
A service restart ends a job caught EXECUTING as ERROR with the reason, and runs QUEUED ones.

The queue is fair: each free worker takes the oldest queued job of the next owner in turn
(round-robin), skipping owners already running as many jobs as they may (anonymous callers
together are one owner, with one job at a time). Anonymous jobs are reachable only by their
random id: never listed, never deleted in bulk, kept a short time, with bounded files.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from collections import Counter, OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from starbox.accounts import User
from starbox.errors import Conflict, Forbidden, NotFound, StarboxError, TooManyRequests
from starbox.mydb import table_name
from starbox.query import formats, run
from starbox.results import save_to_storage
from starbox.settings import Settings
from starbox.storage.paths import PART_PREFIX, write_atomic
from starbox.tap.query import prepare_data_lab

log = logging.getLogger("starbox.jobs")
PHASES = ("QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED")
RESTART_REASON = "Error: the service restarted while this job was running; please submit it again"
STOPPED_REASON = "Error: the service stopped while this job was running; please submit it again"
ABANDONED_REASON = (
    "Error: the Python process that ran this job (the toolkit's in-process mode) ended "
    "before the job finished; please submit it again"
)
# Job kinds other than Data Lab's run through an executor of their own, imported when first needed
# (also by recover() after a restart): kind -> "module:function(runner, jobid, job, user)".
EXECUTORS = {"tap": "starbox.tap.uws:execute"}
# Columns a PENDING job may still change (UWS lets a client edit a job before it runs).
EDITABLE = ("query", "lang", "ofmt", "params", "timeout_s", "destruction")
ANONYMOUS = "anonymous"
ANON_RUNNING = 1  # anonymous jobs running at once (all anonymous callers together)
PURGE_EVERY_S = 30.0  # how often expired jobs and files nobody owns are swept away
# A job's files in the jobs folder: <jobid>.<suffix> (its result), <jobid>-upload-<name>.vot.
JOB_FILE = re.compile(r"^([0-9a-f]{20})[.-]")
BULK_DELETE_REFUSED = (
    "Error: anonymous jobs cannot be listed or deleted in bulk (every anonymous caller "
    "shares one name); give the jobid of your job, or log in"
)


@dataclass(frozen=True)
class JobSpec:
    query: str
    lang: str = "sql"  # sql or adql
    ofmt: str = "csv"
    out_uri: str | None = None  # mydb://t, vos://path or <user>://path
    drop: bool = False
    timeout_s: int = 300
    kind: str = "datalab"
    params: dict = field(default_factory=dict)  # kind-specific parameters (TAP: MAXREC, UPLOAD, ...)


def new_jobid() -> str:
    """80 random bits: for anonymous callers the id is the only key to a job, so it must not be guessable."""
    return secrets.token_hex(10)


def _job_files(jobs_dir: Path | None, jobid: str, result_path: str | None, params: dict | None) -> set[Path]:
    """Every file of a job on disk: its result, its saved uploads, anything named after it."""
    files = {Path(result_path)} if result_path else set()
    dirs = {d for d in (jobs_dir, Path(result_path).parent if result_path else None) if d is not None}
    for name in ((params or {}).get("uploads") or {}).values():
        if os.path.isabs(name):
            files.add(Path(name))
        files.update(d / name for d in dirs)
    for d in dirs:
        files.update(d.glob(f"{jobid}.*"))
        files.update(d.glob(f"{jobid}-*"))
    return files


def _unlink(files) -> None:
    for path in files:
        Path(path).unlink(missing_ok=True)


def job_bytes(conn: psycopg.Connection, owner: str, jobs_dir: Path | None = None) -> int:
    """Bytes on disk of an owner's job results and saved uploads (for the storage quota).
    `conn` is any connection that reads starbox.jobs; `jobs_dir` is $STARBOX_HOME/jobs."""
    total = 0
    for jobid, result_path, params in conn.execute(
        "SELECT jobid, result_path, params FROM starbox.jobs WHERE owner = %s", (owner,)
    ).fetchall():
        for path in _job_files(jobs_dir, jobid, result_path, params):
            try:
                total += path.stat().st_size
            except OSError:  # deleted meanwhile
                pass
    return total


def remove_owner(conn: psycopg.Connection, owner: str, jobs_dir: Path | None = None) -> list[str]:
    """Delete every job of an owner (a removed account) with its files; returns the job ids.
    A job still running in the service loses its result when it ends (JobRunner._run), and
    the service's sweep removes any file whose job is gone."""
    rows = conn.execute(
        "DELETE FROM starbox.jobs WHERE owner = %s RETURNING jobid, result_path, params", (owner,)
    ).fetchall()
    for jobid, result_path, params in rows:
        _unlink(_job_files(jobs_dir, jobid, result_path, params))
    return [r[0] for r in rows]


class JobRunner:
    """Owns the worker pool; the service creates one at start-up."""

    def __init__(self, settings: Settings, pools):
        self.settings, self.pools = settings, pools
        self.dir = settings.home / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self._running: dict[str, psycopg.Connection] = {}
        self._mine: set[str] = set()  # jobs handed to this runner's workers, not yet finished
        # The fair queue: owner -> its queued job ids, oldest first; the dict's order is whose
        # turn it is. _busy counts each owner's running jobs. One condition guards it all.
        self._queues: OrderedDict[str, deque[str]] = OrderedDict()
        self._busy: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._anon_admit = threading.Lock()  # counting waiting anonymous jobs and adding one is atomic
        self._closed = False
        self._stop = threading.Event()
        self._workers = [
            threading.Thread(target=self._work, name=f"job-{i}", daemon=True)
            for i in range(max(1, settings.job_workers))
        ]
        for worker in self._workers:
            worker.start()
        self._sweeper = threading.Thread(target=self._sweep, name="job-sweep", daemon=True)
        self._sweeper.start()

    # -- lifecycle ----------------------------------------------------------------------------
    def recover(self) -> None:
        with self.pools.state_conn() as conn:
            conn.execute(
                "UPDATE starbox.jobs SET phase = 'ERROR', error = %s, finished = now() WHERE phase = 'EXECUTING'",
                (RESTART_REASON,),
            )
            queued = conn.execute(
                "SELECT jobid, owner FROM starbox.jobs WHERE phase = 'QUEUED' ORDER BY created"
            ).fetchall()
        for jobid, owner in queued:
            self._hand_over(jobid, owner)

    def shutdown(self, abandon_queued: bool = False) -> None:
        """Stop the workers. This runner's EXECUTING jobs end as ERROR with the reason (first,
        so the cancelled query's own error does not stand in for it); with `abandon_queued` (the
        in-process mode: nobody else will run them) its QUEUED ones too, else they wait for the
        service's next start."""
        with self._lock:
            mine = list(self._mine)
        if mine:
            phases = ["EXECUTING", "QUEUED"] if abandon_queued else ["EXECUTING"]
            try:
                with self.pools.state_conn() as conn:
                    conn.execute(
                        "UPDATE starbox.jobs SET phase = 'ERROR', error = %s, finished = now()"
                        " WHERE jobid = ANY(%s) AND phase = ANY(%s)",
                        (ABANDONED_REASON if abandon_queued else STOPPED_REASON, mine, phases),
                    )
            except (psycopg.Error, StarboxError):  # the database went first: recover() will tell
                log.warning("could not mark the unfinished jobs %s as ended", ", ".join(mine))
        with self._lock:
            self._closed = True  # queued jobs stay QUEUED in the table for the next start
            self._lock.notify_all()
            for conn in self._running.values():
                conn.cancel_safe()
        self._stop.set()
        for worker in self._workers:
            worker.join()

    # -- API ----------------------------------------------------------------------------------
    def submit(self, user: User, spec: JobSpec, run_now: bool = True) -> str:
        jobid = new_jobid()
        timeout = max(1, min(spec.timeout_s, self.settings.async_timeout(user.anonymous)))
        sql = (
            "INSERT INTO starbox.jobs (jobid, owner, kind, phase, query, lang, ofmt, out_uri, params, timeout_s,"
            " destruction) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, {})"
        )
        args = [
            jobid,
            user.name,
            spec.kind,
            "QUEUED" if run_now else "PENDING",
            spec.query,
            spec.lang,
            spec.ofmt,
            spec.out_uri,
            Jsonb({"drop": spec.drop, **spec.params}),
            timeout,
        ]
        if user.anonymous:  # a short life: anonymous jobs and their files must not pile up
            sql = sql.format("now() + %s * interval '1 second'")
            args.append(self.settings.anon_job_lifetime)
            with self._anon_admit, self.pools.state_conn() as conn:
                self._check_anon_queue(conn)
                conn.execute(sql, args)
        else:
            with self.pools.state_conn() as conn:
                conn.execute(sql.format("DEFAULT"), args)
        if run_now:
            self._hand_over(jobid, user.name)
        return jobid

    def _check_anon_queue(self, conn) -> None:
        waiting = conn.execute(
            "SELECT count(*) FROM starbox.jobs WHERE owner = %s AND phase IN ('PENDING', 'QUEUED')"
            " AND destruction > now()",
            (ANONYMOUS,),
        ).fetchone()[0]
        if waiting >= self.settings.anon_jobs_queued:
            raise TooManyRequests(
                f"Error: {waiting} anonymous jobs are already waiting, as many as anonymous callers may have at once "
                "(they run one at a time); try again later, or log in to have a queue of your own",
                retry_after=min(60, self.settings.async_timeout(True)),
            )

    def get(self, user: User, jobid: str) -> dict:
        with self.pools.state_conn() as conn:
            row = (
                conn.cursor(row_factory=dict_row)
                .execute("SELECT * FROM starbox.jobs WHERE jobid = %s AND owner = %s", (jobid, user.name))
                .fetchone()
            )
        if row is None:
            raise NotFound(f"Error: no job {jobid!r} for user {user.name}")
        return row

    def abort(self, user: User, jobid: str) -> str:
        self.get(user, jobid)
        with self.pools.state_conn() as conn:
            conn.execute(
                "UPDATE starbox.jobs SET phase = 'ABORTED', finished = now(), error = 'aborted by the user'"
                " WHERE jobid = %s AND phase IN ('PENDING', 'QUEUED', 'EXECUTING')",
                (jobid,),
            )
        with self._lock:
            running = self._running.get(jobid)
        if running is not None:
            running.cancel_safe()
        return self.get(user, jobid)["phase"]

    def result_file(self, user: User, jobid: str) -> tuple[Path, formats.Format]:
        job = self.get(user, jobid)
        if job["phase"] != "COMPLETED":
            raise StarboxError(f"Error: job {jobid} is {job['phase']}, it has no result")
        if not job["result_path"] or not Path(job["result_path"]).exists():
            raise NotFound(
                f"Error: the result of job {jobid} was already fetched and deleted"
                if not job["out_uri"]
                else f"Error: job {jobid} wrote its result to {job['out_uri']}"
            )
        return Path(job["result_path"]), formats.get(job["ofmt"])

    def forget_result(self, jobid: str) -> None:
        """Delete a delivered result (results?delete=True); the job record stays."""
        with self.pools.state_conn() as conn:
            row = conn.execute("SELECT result_path FROM starbox.jobs WHERE jobid = %s", (jobid,)).fetchone()
            conn.execute("UPDATE starbox.jobs SET result_path = NULL WHERE jobid = %s", (jobid,))
        if row and row[0]:
            Path(row[0]).unlink(missing_ok=True)

    def find(self, user: User, jobid: str | None = None, status: str = "all") -> list[dict]:
        """A user's jobs. Anonymous callers share one owner name, so they never get a list:
        only the job whose id they give."""
        if user.anonymous and not jobid:
            return []
        where, args = ["owner = %s"], [user.name]
        if jobid:
            where.append("jobid = %s")
            args.append(jobid)
        if status and status.lower() != "all":
            where.append("phase = %s")
            args.append(status.upper())
        with self.pools.state_conn() as conn:
            return (
                conn.cursor(row_factory=dict_row)
                .execute(f"SELECT * FROM starbox.jobs WHERE {' AND '.join(where)} ORDER BY created", args)
                .fetchall()
            )

    def delete(self, user: User, jobs: list[dict]) -> int:
        if user.anonymous and len(jobs) > 1:
            raise Forbidden(BULK_DELETE_REFUSED)
        done = 0
        for job in jobs:
            if job["phase"] == "EXECUTING":
                continue
            with self.pools.state_conn() as conn:
                row = conn.execute(
                    "DELETE FROM starbox.jobs WHERE jobid = %s AND owner = %s RETURNING params",
                    (job["jobid"], user.name),
                ).fetchone()
            if row is not None:
                _unlink(_job_files(self.dir, job["jobid"], job["result_path"], row[0]))
                done += 1
        return done

    def job_bytes(self, owner: str) -> int:
        """Bytes on disk of an owner's job results and uploads (see job_bytes)."""
        with self.pools.state_conn() as conn:
            return job_bytes(conn, owner, self.dir)

    def remove_owner(self, owner: str) -> list[str]:
        """Delete an owner's jobs and files (see remove_owner), stopping the running ones."""
        with self.pools.state_conn() as conn:
            gone = remove_owner(conn, owner, self.dir)
        self._cancel(gone)
        return gone

    # -- UWS: jobs created PENDING, edited, started, destroyed -------------------------------------
    def start(self, user: User, jobid: str) -> str:
        """PENDING -> QUEUED and hand it to a worker; any other phase is left alone."""
        self.get(user, jobid)
        with self.pools.state_conn() as conn:
            moved = conn.execute(
                "UPDATE starbox.jobs SET phase = 'QUEUED' WHERE jobid = %s AND phase = 'PENDING'", (jobid,)
            ).rowcount
        if moved:
            self._hand_over(jobid, user.name)
        return self.get(user, jobid)["phase"]

    def update(self, user: User, jobid: str, **fields) -> dict:
        """Change a job's parameters; only a PENDING job may change anything but its destruction."""
        unknown = set(fields) - set(EDITABLE)
        if unknown:
            raise StarboxError(f"Error: a job has no editable field {', '.join(sorted(unknown))}")
        job = self.get(user, jobid)
        if set(fields) - {"destruction"} and job["phase"] != "PENDING":
            raise Conflict(f"Error: job {jobid} is {job['phase']}; only a PENDING job can be changed")
        if "timeout_s" in fields:
            fields["timeout_s"] = max(1, min(int(fields["timeout_s"]), self.settings.async_timeout(user.anonymous)))
        if fields:
            fields = {k: Jsonb(v) if k == "params" else v for k, v in fields.items()}
            # An anonymous job's destruction never moves past its short lifetime.
            setters = (
                {
                    "destruction": "destruction = LEAST(%s, created + interval '1 second' * "
                    f"{int(self.settings.anon_job_lifetime)})"
                }
                if user.anonymous
                else {}
            )
            sets = ", ".join(setters.get(k, f"{k} = %s") for k in fields)
            with self.pools.state_conn() as conn:
                conn.execute(
                    f"UPDATE starbox.jobs SET {sets} WHERE jobid = %s AND owner = %s",
                    (*fields.values(), jobid, user.name),
                )
        return self.get(user, jobid)

    def connection(self, jobid: str, user: User):
        """The user's connection for a job, registered so that abort() can cancel its query."""
        return self._conn_for(jobid, user)

    def purge_expired(self) -> list[str]:
        """Destroy the jobs past their destruction time (TAP's jobs, and every anonymous job; the
        Data Lab API has no destruction time for a user's jobs): stop them, delete rows and files."""
        with self.pools.state_conn() as conn:
            rows = conn.execute(
                "DELETE FROM starbox.jobs WHERE destruction <= now() AND (kind = 'tap' OR owner = %s)"
                " RETURNING jobid, result_path, params",
                (ANONYMOUS,),
            ).fetchall()
        self._cancel([r[0] for r in rows])
        for jobid, result_path, params in rows:
            _unlink(_job_files(self.dir, jobid, result_path, params))
        return [r[0] for r in rows]

    def sweep_orphans(self) -> int:
        """Delete files in the jobs folder whose job is gone (a removed account's job that was
        still running, a service killed mid-write); returns how many."""
        by_job: dict[str, list[str]] = {}
        stale = time.time() - self.settings.async_timeout_max - 3600  # no job writes that long
        with os.scandir(self.dir) as entries:
            for entry in entries:
                match = JOB_FILE.match(entry.name)
                if match:
                    by_job.setdefault(match.group(1), []).append(entry.path)
                elif entry.name.startswith(PART_PREFIX) and entry.stat().st_mtime < stale:
                    Path(entry.path).unlink(missing_ok=True)
        if not by_job:
            return 0
        with self.pools.state_conn() as conn:
            known = {
                r[0] for r in conn.execute("SELECT jobid FROM starbox.jobs WHERE jobid = ANY(%s)", (list(by_job),))
            }
        orphans = [path for jobid, paths in by_job.items() if jobid not in known for path in paths]
        _unlink(orphans)
        return len(orphans)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the workers and their fair queue ----------------------------------------------------------
    def _hand_over(self, jobid: str, owner: str) -> None:
        with self._lock:
            if self._closed:  # stopping: the job stays QUEUED for the next start
                return
            self._mine.add(jobid)
            self._queues.setdefault(owner, deque()).append(jobid)
            self._lock.notify_all()

    def _limit(self, owner: str) -> int:
        return ANON_RUNNING if owner == ANONYMOUS else max(1, self.settings.user_jobs_running)

    def _next(self) -> tuple[str, str] | None:
        """The oldest queued job of the first owner in turn who may run one more; that owner
        goes to the back of the turn. Called with the lock held."""
        for owner, queue in self._queues.items():
            if self._busy[owner] < self._limit(owner):
                jobid = queue.popleft()
                if queue:
                    self._queues.move_to_end(owner)
                else:
                    del self._queues[owner]
                self._busy[owner] += 1
                return jobid, owner
        return None

    def _work(self) -> None:
        while True:
            with self._lock:
                pick = None
                while not self._closed and (pick := self._next()) is None:
                    self._lock.wait()
                if self._closed:
                    if pick:
                        self._busy[pick[1]] -= 1
                    return
            jobid, owner = pick
            try:
                self._run(jobid)
            except Exception:  # the database away while claiming or finishing: keep the worker alive
                log.exception("job %s could not be run", jobid)
            finally:
                with self._lock:
                    self._busy[owner] -= 1
                    self._mine.discard(jobid)
                    self._lock.notify_all()

    def _sweep(self) -> None:
        while not self._stop.wait(PURGE_EVERY_S):
            try:
                self.purge_expired()
                self.sweep_orphans()
            except Exception:  # the database is away for a moment: try again next round
                log.debug("job sweep failed", exc_info=True)

    def _cancel(self, jobids) -> None:
        with self._lock:
            running = [self._running[j] for j in jobids if j in self._running]
        for conn in running:
            conn.cancel_safe()

    def _claim(self, jobid: str) -> dict | None:
        with self.pools.state_conn() as conn:
            return (
                conn.cursor(row_factory=dict_row)
                .execute(
                    "UPDATE starbox.jobs SET phase = 'EXECUTING', started = now() WHERE jobid = %s AND phase = 'QUEUED'"
                    " RETURNING *",
                    (jobid,),
                )
                .fetchone()
            )

    def _finish(self, jobid: str, phase: str, **fields) -> bool:
        sets = ", ".join(f"{k} = %s" for k in fields)
        with self.pools.state_conn() as conn:
            return (
                conn.execute(
                    f"UPDATE starbox.jobs SET phase = %s, finished = now(){', ' + sets if sets else ''}"
                    " WHERE jobid = %s AND phase = 'EXECUTING'",
                    (phase, *fields.values(), jobid),
                ).rowcount
                > 0
            )

    def _run(self, jobid: str) -> None:
        job = self._claim(jobid)
        if job is None:  # aborted or deleted while queued
            with self._lock:
                self._mine.discard(jobid)
            return
        user = User(job["owner"])
        # Whatever the row says (a setting lowered since), an anonymous job runs within its cap.
        job["timeout_s"] = max(1, min(job["timeout_s"], self.settings.async_timeout(user.anonymous)))
        try:
            path, rows = self._executor(job["kind"])(jobid, job, user)
            if not self._finish(jobid, "COMPLETED", result_path=str(path) if path else None, result_rows=rows) and path:
                Path(path).unlink(missing_ok=True)  # aborted, destroyed or its account removed meanwhile
        except StarboxError as exc:
            self._finish(jobid, "ERROR", error=str(exc))
        except Exception as exc:  # a bug: keep the service up, tell the user, log the trace
            log.exception("job %s failed", jobid)
            self._finish(jobid, "ERROR", error=f"Error: internal error ({type(exc).__name__})")
        finally:
            with self._lock:
                self._running.pop(jobid, None)
                self._mine.discard(jobid)

    def _executor(self, kind: str):
        if kind not in EXECUTORS:
            return self._execute
        import importlib

        module, name = EXECUTORS[kind].split(":")
        execute = getattr(importlib.import_module(module), name)
        return lambda jobid, job, user: execute(self, jobid, job, user)

    def _conn_for(self, jobid: str, user: User):
        runner = self

        class _Tracked:
            def __enter__(self):
                self.cm = runner.pools.user(user)
                conn = self.cm.__enter__()
                with runner._lock:
                    runner._running[jobid] = conn
                return conn

            def __exit__(self, *exc):
                with runner._lock:
                    runner._running.pop(jobid, None)
                return self.cm.__exit__(*exc)

        return _Tracked()

    def _execute(self, jobid: str, job: dict, user: User) -> tuple[Path | None, int | None]:
        prepared = prepare_data_lab(self.pools, user, **{job["lang"]: job["query"]})
        limits = run.Limits(job["timeout_s"], self.settings.row_cap)
        out = job["out_uri"] or ""
        if out.startswith("mydb://"):
            with self._conn_for(jobid, user) as conn:
                rows = run.run_to_mydb(
                    conn, prepared, user.schema, table_name(user, out).name, job["params"].get("drop", False), limits
                )
            return None, rows
        fmt, chunks = run.stream(lambda: self._conn_for(jobid, user), prepared, job["ofmt"], limits)
        try:
            if out:
                save_to_storage(self.settings, user, out, chunks)
                return None, None
            path = self.dir / f"{jobid}.{fmt.suffix}"
            write_atomic(path, chunks, **self.result_limit(user))
            return path, None
        finally:
            chunks.close()  # a failed write stops the query too

    def result_limit(self, user: User) -> dict:
        """write_atomic's limit for a job's result file: anonymous results are bounded."""
        if not user.anonymous:
            return {}
        mb = self.settings.anon_job_mb
        return {
            "limit": mb << 20,
            "limit_message": f"Error: the result is larger than the {mb} MB an anonymous job "
            "may keep; ask for fewer rows or columns, or log in",
        }
