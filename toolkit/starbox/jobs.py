"""Asynchronous query jobs: rows in starbox.jobs, run by a bounded pool of worker threads.

Phases are Data Lab's (and UWS's): QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED. A result is a
file under $STARBOX_HOME/jobs (or a MyDB table, or a file in the user's storage for out=vos://).
A service restart ends a job caught EXECUTING as ERROR with the reason, and runs QUEUED ones.
"""

from __future__ import annotations

import logging
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from starbox.accounts import User
from starbox.errors import NotFound, StarboxError
from starbox.query import formats, prepare, run
from starbox.settings import Settings
from starbox.storage.paths import write_atomic

log = logging.getLogger("starbox.jobs")
PHASES = ("QUEUED", "EXECUTING", "COMPLETED", "ERROR", "ABORTED")
RESTART_REASON = "Error: the service restarted while this job was running; please submit it again"
STOPPED_REASON = "Error: the service stopped while this job was running; please submit it again"
ABANDONED_REASON = ("Error: the Python process that ran this job (the toolkit's in-process mode) ended "
                    "before the job finished; please submit it again")
# Job kinds other than Data Lab's run through an executor of their own, imported when first needed
# (also by recover() after a restart): kind -> "module:function(runner, jobid, job, user)".
EXECUTORS = {"tap": "starbox.tap.uws:execute"}
# Columns a PENDING job may still change (UWS lets a client edit a job before it runs).
EDITABLE = ("query", "lang", "ofmt", "params", "timeout_s", "destruction")


@dataclass(frozen=True)
class JobSpec:
    query: str
    lang: str = "sql"          # sql or adql
    ofmt: str = "csv"
    out_uri: str | None = None  # mydb://t, vos://path or <user>://path
    drop: bool = False
    timeout_s: int = 300
    kind: str = "datalab"
    params: dict = field(default_factory=dict)  # kind-specific parameters (TAP: MAXREC, UPLOAD, ...)


def new_jobid() -> str:
    return secrets.token_hex(10)


class JobRunner:
    """Owns the worker pool; the service creates one at start-up."""

    def __init__(self, settings: Settings, pools):
        self.settings, self.pools = settings, pools
        self.dir = settings.home / "jobs"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.executor = ThreadPoolExecutor(max_workers=max(1, settings.job_workers), thread_name_prefix="job")
        self._running: dict[str, psycopg.Connection] = {}
        self._mine: set[str] = set()  # jobs handed to this runner's workers, not yet finished
        self._lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------------
    def recover(self) -> None:
        with self.pools.state_conn() as conn:
            conn.execute("UPDATE starbox.jobs SET phase = 'ERROR', error = %s, finished = now()"
                         " WHERE phase = 'EXECUTING'", (RESTART_REASON,))
            queued = [r[0] for r in conn.execute("SELECT jobid FROM starbox.jobs WHERE phase = 'QUEUED' ORDER BY created")]
        for jobid in queued:
            self._hand_over(jobid)

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
                    conn.execute("UPDATE starbox.jobs SET phase = 'ERROR', error = %s, finished = now()"
                                 " WHERE jobid = ANY(%s) AND phase = ANY(%s)",
                                 (ABANDONED_REASON if abandon_queued else STOPPED_REASON, mine, phases))
            except (psycopg.Error, StarboxError):  # the database went first: recover() will tell
                log.warning("could not mark the unfinished jobs %s as ended", ", ".join(mine))
        with self._lock:
            for conn in self._running.values():
                conn.cancel_safe()
        self.executor.shutdown(wait=True, cancel_futures=True)

    # -- API ----------------------------------------------------------------------------------
    def submit(self, user: User, spec: JobSpec, run_now: bool = True) -> str:
        jobid = new_jobid()
        with self.pools.state_conn() as conn:
            conn.execute(
                "INSERT INTO starbox.jobs (jobid, owner, kind, phase, query, lang, ofmt, out_uri, params, timeout_s)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (jobid, user.name, spec.kind, "QUEUED" if run_now else "PENDING", spec.query, spec.lang,
                 spec.ofmt, spec.out_uri, Jsonb({"drop": spec.drop, **spec.params}), spec.timeout_s))
        if run_now:
            self._hand_over(jobid)
        return jobid

    def get(self, user: User, jobid: str) -> dict:
        with self.pools.state_conn() as conn:
            row = conn.cursor(row_factory=dict_row).execute(
                "SELECT * FROM starbox.jobs WHERE jobid = %s AND owner = %s", (jobid, user.name)).fetchone()
        if row is None:
            raise NotFound(f"Error: no job {jobid!r} for user {user.name}")
        return row

    def abort(self, user: User, jobid: str) -> str:
        self.get(user, jobid)
        with self.pools.state_conn() as conn:
            conn.execute("UPDATE starbox.jobs SET phase = 'ABORTED', finished = now(), error = 'aborted by the user'"
                         " WHERE jobid = %s AND phase IN ('PENDING', 'QUEUED', 'EXECUTING')", (jobid,))
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
            raise NotFound(f"Error: the result of job {jobid} was already fetched and deleted"
                           if not job["out_uri"] else f"Error: job {jobid} wrote its result to {job['out_uri']}")
        return Path(job["result_path"]), formats.get(job["ofmt"])

    def forget_result(self, jobid: str) -> None:
        """Delete a delivered result (results?delete=True); the job record stays."""
        with self.pools.state_conn() as conn:
            row = conn.execute("SELECT result_path FROM starbox.jobs WHERE jobid = %s", (jobid,)).fetchone()
            conn.execute("UPDATE starbox.jobs SET result_path = NULL WHERE jobid = %s", (jobid,))
        if row and row[0]:
            Path(row[0]).unlink(missing_ok=True)

    def find(self, user: User, jobid: str | None = None, status: str = "all") -> list[dict]:
        where, args = ["owner = %s"], [user.name]
        if jobid:
            where.append("jobid = %s")
            args.append(jobid)
        if status and status.lower() != "all":
            where.append("phase = %s")
            args.append(status.upper())
        with self.pools.state_conn() as conn:
            return conn.cursor(row_factory=dict_row).execute(
                f"SELECT * FROM starbox.jobs WHERE {' AND '.join(where)} ORDER BY created", args).fetchall()

    def delete(self, user: User, jobs: list[dict]) -> int:
        done = 0
        for job in jobs:
            if job["phase"] == "EXECUTING":
                continue
            with self.pools.state_conn() as conn:
                conn.execute("DELETE FROM starbox.jobs WHERE jobid = %s AND owner = %s", (job["jobid"], user.name))
            if job["result_path"]:
                Path(job["result_path"]).unlink(missing_ok=True)
            done += 1
        return done

    # -- UWS: jobs created PENDING, edited, started, destroyed -------------------------------------
    def start(self, user: User, jobid: str) -> str:
        """PENDING -> QUEUED and hand it to a worker; any other phase is left alone."""
        self.get(user, jobid)
        with self.pools.state_conn() as conn:
            moved = conn.execute("UPDATE starbox.jobs SET phase = 'QUEUED' WHERE jobid = %s AND phase = 'PENDING'",
                                 (jobid,)).rowcount
        if moved:
            self._hand_over(jobid)
        return self.get(user, jobid)["phase"]

    def update(self, user: User, jobid: str, **fields) -> dict:
        """Change a job's parameters; only a PENDING job may change anything but its destruction."""
        from starbox.errors import Conflict

        unknown = set(fields) - set(EDITABLE)
        if unknown:
            raise StarboxError(f"Error: a job has no editable field {', '.join(sorted(unknown))}")
        job = self.get(user, jobid)
        if set(fields) - {"destruction"} and job["phase"] != "PENDING":
            raise Conflict(f"Error: job {jobid} is {job['phase']}; only a PENDING job can be changed")
        if fields:
            fields = {k: Jsonb(v) if k == "params" else v for k, v in fields.items()}
            sets = ", ".join(f"{k} = %s" for k in fields)
            with self.pools.state_conn() as conn:
                conn.execute(f"UPDATE starbox.jobs SET {sets} WHERE jobid = %s AND owner = %s",
                             (*fields.values(), jobid, user.name))
        return self.get(user, jobid)

    def connection(self, jobid: str, user: User):
        """The user's connection for a job, registered so that abort() can cancel its query."""
        return self._conn_for(jobid, user)

    def purge_expired(self, kind: str | None = None) -> list[str]:
        """Destroy the jobs past their destruction time: stop them, delete rows and files."""
        with self.pools.state_conn() as conn:
            rows = conn.execute(
                "DELETE FROM starbox.jobs WHERE destruction <= now()"
                + (" AND kind = %s" if kind else "") + " RETURNING jobid, result_path",
                (kind,) if kind else ()).fetchall()
        for jobid, result_path in rows:
            with self._lock:
                running = self._running.get(jobid)
            if running is not None:
                running.cancel_safe()
            if result_path:
                Path(result_path).unlink(missing_ok=True)
            for extra in self.dir.glob(f"{jobid}-*"):  # files a job kept beside its result (uploads)
                extra.unlink(missing_ok=True)
        return [r[0] for r in rows]

    @property
    def closed(self) -> bool:
        return self.executor._shutdown

    # -- the worker -----------------------------------------------------------------------------
    def _hand_over(self, jobid: str) -> None:
        with self._lock:
            self._mine.add(jobid)
        self.executor.submit(self._run, jobid)

    def _claim(self, jobid: str) -> dict | None:
        with self.pools.state_conn() as conn:
            return conn.cursor(row_factory=dict_row).execute(
                "UPDATE starbox.jobs SET phase = 'EXECUTING', started = now() WHERE jobid = %s AND phase = 'QUEUED'"
                " RETURNING *", (jobid,)).fetchone()

    def _finish(self, jobid: str, phase: str, **fields) -> None:
        sets = ", ".join(f"{k} = %s" for k in fields)
        with self.pools.state_conn() as conn:
            conn.execute(f"UPDATE starbox.jobs SET phase = %s, finished = now(){', ' + sets if sets else ''}"
                         " WHERE jobid = %s AND phase = 'EXECUTING'", (phase, *fields.values(), jobid))

    def _run(self, jobid: str) -> None:
        job = self._claim(jobid)
        if job is None:  # aborted or deleted while queued
            with self._lock:
                self._mine.discard(jobid)
            return
        user = User(job["owner"])
        try:
            path, rows = self._executor(job["kind"])(jobid, job, user)
            self._finish(jobid, "COMPLETED", result_path=str(path) if path else None, result_rows=rows)
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
        prepared = prepare(user, **{job["lang"]: job["query"]})
        limits = run.Limits(job["timeout_s"], self.settings.row_cap)
        out = job["out_uri"] or ""
        if out.startswith("mydb://"):
            from starbox.mydb import table_name

            with self._conn_for(jobid, user) as conn:
                rows = run.run_to_mydb(conn, prepared, user.schema, table_name(user, out).name,
                                       job["params"].get("drop", False), limits)
            return None, rows
        fmt, chunks = run.stream(lambda: self._conn_for(jobid, user), prepared, job["ofmt"], limits)
        try:
            if out:
                from starbox.results import save_to_storage

                save_to_storage(self.settings, user, out, chunks)
                return None, None
            path = self.dir / f"{jobid}.{fmt.suffix}"
            write_atomic(path, chunks)
            return path, None
        finally:
            chunks.close()  # a failed write stops the query too
