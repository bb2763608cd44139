"""TAP's asynchronous jobs (UWS 1.1) on starbox.jobs.JobRunner: rows of starbox.jobs with
kind 'tap', beside the Data Lab API's jobs, run by the same workers and surviving restarts.

A job is created PENDING (or queued at once with PHASE=RUN); its TAP parameters live in the
row's params, uploaded tables in files beside the result. Parameters are checked when the job
runs, so a bad query ends the job in ERROR with the message in its error document, as UWS asks.
Anonymous jobs (one owner name for every anonymous caller) are never listed, live a short time
(anon_job_lifetime), run at most anon_async_timeout_max and keep at most anon_job_mb of uploads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import threading
import time
from xml.sax.saxutils import escape, quoteattr

from starbox.accounts import User
from starbox.errors import NotFound, StarboxError, TooLarge
from starbox.jobs import JobSpec
from starbox.storage.paths import write_atomic
from starbox.tap import query, upload, votable
from starbox.tap.params import Params

NS = (
    'xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0" xmlns:xlink="http://www.w3.org/1999/xlink"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
ACTIVE = ("PENDING", "QUEUED", "EXECUTING")
MAX_WAIT_S = 60  # the longest a WAIT blocks (UWS lets the service choose)
MAX_LIFETIME = dt.timedelta(days=30)
# Parameters that are not the job's TAP parameters when posted to a job.
CONTROL = {"PHASE", "ACTION", "DESTRUCTION", "EXECUTIONDURATION", "WAIT"}


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def iso(t: dt.datetime | None) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" if t else ""


def parse_time(value: str, what: str) -> dt.datetime:
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise StarboxError(
            f"Error: {what} must be an ISO 8601 time such as 2030-01-31T12:00:00Z, not {value!r}"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


# -- creating and changing jobs ------------------------------------------------------------------


def create(runner, settings, user: User, p: Params) -> str:
    """A new TAP job from the posted parameters; queued at once when PHASE=RUN."""
    tap = {k: v for k, v in p.as_dict().items() if k.upper() not in CONTROL}
    uploads = _upload_parts(p)
    _check_uploads(settings, user, uploads)
    cap = settings.async_timeout(user.anonymous)
    timeout = _duration(p.get("EXECUTIONDURATION"), cap) if "EXECUTIONDURATION" in p else cap
    spec = JobSpec(
        query=tap.get("query", ""), lang="adql", ofmt=_ofmt(tap), timeout_s=timeout, kind="tap", params={"tap": tap}
    )
    jobid = runner.submit(user, spec, run_now=False)
    fields = {}
    if uploads:
        fields["params"] = {"drop": False, "tap": tap, "uploads": _save_uploads(runner, jobid, uploads)}
    if "DESTRUCTION" in p:
        fields["destruction"] = _destruction(p.get("DESTRUCTION"))
    if fields:
        runner.update(user, jobid, **fields)
    if (p.get("PHASE") or "").upper() == "RUN":
        runner.start(user, jobid)
    return jobid


def _ofmt(tap: dict) -> str:
    try:
        return query.output_format(tap.get("responseformat") or tap.get("format")).name
    except StarboxError:
        return "votable"  # the job will end in ERROR with the message when it runs


def _upload_parts(p: Params) -> dict[str, bytes]:
    out = {}
    for value in p.all("UPLOAD"):
        for name, uri in upload.parse_param(value):
            out[name] = upload.resolve(name, uri, p.files)  # fetched now: the job keeps its own copy
    return out


def _check_uploads(settings, user: User, uploads: dict[str, bytes], kept: int = 0) -> None:
    """Anonymous jobs keep at most anon_job_mb of uploaded tables (`kept`: bytes saved before)."""
    if not user.anonymous or not uploads:
        return
    mb = settings.anon_job_mb
    if kept + sum(len(data) for data in uploads.values()) > mb << 20:
        raise TooLarge(f"Error: an anonymous job may keep at most {mb} MB of uploaded tables; upload less, or log in")


def _saved_bytes(runner, job: dict) -> int:
    total = 0
    for name in (job["params"].get("uploads") or {}).values():
        try:
            total += (runner.dir / name).stat().st_size
        except OSError:
            pass
    return total


def _save_uploads(runner, jobid: str, uploads: dict[str, bytes]) -> dict[str, str]:
    saved = {}
    for name, data in uploads.items():
        path = runner.dir / f"{jobid}-upload-{name}.vot"
        path.write_bytes(data)
        saved[name] = str(path)  # the whole path: starbox.jobs.remove_owner finds it without settings
    return saved


def _duration(value: str | None, cap: int) -> int:
    try:
        secs = int(float((value or "").strip()))
    except (ValueError, OverflowError):  # OverflowError: 1e400 is inf
        raise StarboxError(f"Error: EXECUTIONDURATION must be a number of seconds, not {value!r}") from None
    return cap if secs <= 0 else min(secs, cap)


def _destruction(value: str | None) -> dt.datetime:
    """The asked time, at most MAX_LIFETIME away (JobRunner.update keeps an anonymous job's shorter)."""
    return min(parse_time(value or "", "DESTRUCTION"), now() + MAX_LIFETIME)


def post(runner, settings, user: User, jobid: str, p: Params) -> str:
    """POST to a job or one of its parts: PHASE, DESTRUCTION, EXECUTIONDURATION, parameters,
    ACTION=DELETE. Returns 'deleted' or 'changed'."""
    if (p.get("ACTION") or "").upper() == "DELETE":
        delete(runner, user, jobid)
        return "deleted"
    if p.get("ACTION") is not None:
        raise StarboxError(f"Error: ACTION={p.get('ACTION')!r} is not supported; use ACTION=DELETE")
    job = runner.get(user, jobid)
    if "DESTRUCTION" in p:
        runner.update(user, jobid, destruction=_destruction(p.get("DESTRUCTION")))
    if "EXECUTIONDURATION" in p:
        runner.update(
            user, jobid, timeout_s=_duration(p.get("EXECUTIONDURATION"), settings.async_timeout(user.anonymous))
        )
    tap = {k: v for k, v in p.as_dict().items() if k.upper() not in CONTROL}
    uploads = _upload_parts(p)
    _check_uploads(settings, user, uploads, _saved_bytes(runner, job) if uploads else 0)
    if tap or uploads:
        params = dict(job["params"])
        params["tap"] = {**params.get("tap", {}), **tap}
        if uploads:
            params["uploads"] = {**params.get("uploads", {}), **_save_uploads(runner, jobid, uploads)}
        runner.update(user, jobid, params=params, query=params["tap"].get("query", ""), ofmt=_ofmt(params["tap"]))
    phase = (p.get("PHASE") or "").upper()
    if phase == "RUN":
        runner.start(user, jobid)
    elif phase == "ABORT":
        runner.abort(user, jobid)
    elif phase:
        raise StarboxError(f"Error: PHASE={p.get('PHASE')!r} is not supported; use PHASE=RUN or PHASE=ABORT")
    return "changed"


def delete(runner, user: User, jobid: str) -> None:
    job = runner.get(user, jobid)
    if job["phase"] in ACTIVE:
        runner.abort(user, jobid)
        job = runner.get(user, jobid)
    # A query being cancelled may still hold its row for a moment; the worker ends it quickly.
    for _ in range(50):
        if runner.delete(user, [job]):  # the job's files go with it
            break
        time.sleep(0.1)
        job = runner.get(user, jobid)


_last_purge = {"at": 0.0}
_purge_lock = threading.Lock()


def purge(runner) -> None:
    """Destroy jobs past their destruction time, at most once a second, from requests (the
    runner's own sweep does it too, so that nobody has to ask)."""
    with _purge_lock:
        if time.monotonic() - _last_purge["at"] < 1.0:
            return
        _last_purge["at"] = time.monotonic()
    runner.purge_expired()


# -- running ------------------------------------------------------------------------------------


def execute(runner, jobid: str, job: dict, user: User):
    """The worker's part (starbox.jobs.EXECUTORS['tap']): run the query into a result file."""
    settings = runner.settings
    p = Params()
    for k, v in (job["params"].get("tap") or {}).items():
        p.add(k, v)
    saved = job["params"].get("uploads") or {}
    for name, filename in saved.items():
        p.files[f"upload-{name}"] = (runner.dir / filename).read_bytes()  # a whole path, or a name (older jobs)
    if saved:  # the parts were saved under names of our own
        p.values["UPLOAD"] = [";".join(f"{n},param:upload-{n}" for n in saved)]
    q = query.from_params(p, settings)
    fmt, chunks, outcome = query.stream(
        runner.pools, user, q, job["timeout_s"], settings.row_cap, open_conn=lambda: runner.connection(jobid, user)
    )
    suffix = {"votable": "xml", "csv": "csv", "tsv": "tsv", "fits": "fits", "parquet": "parquet"}[fmt.name]
    path = runner.dir / f"{jobid}.{suffix}"

    def checked():  # an error the encoder noted after the last chunk still means no result file
        yield from chunks
        if outcome.error:
            raise StarboxError(outcome.error)

    try:
        write_atomic(path, checked(), **runner.result_limit(user))
    finally:
        getattr(chunks, "close", lambda: None)()  # a refused write stops the query too
    return path, outcome.rows if not fmt.text else None


# -- documents ----------------------------------------------------------------------------------


def _el(tag: str, value) -> str:
    if value in (None, ""):
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{escape(str(value))}</uws:{tag}>"


def media_type(job: dict) -> str:
    tap = job["params"].get("tap") or {}
    try:
        return query.output_format(tap.get("responseformat") or tap.get("format")).media_type
    except StarboxError:
        return votable.MEDIA_TYPE


def job_xml(job: dict, base: str) -> bytes:
    tap = job["params"].get("tap") or {}
    href = f"{base}/async/{job['jobid']}"
    params = "".join(
        f"<uws:parameter id={quoteattr(k)}>{escape(str(v))}</uws:parameter>" for k, v in sorted(tap.items())
    )
    params += "".join(
        f'<uws:parameter id={quoteattr("upload")} byReference="true">'
        f"{escape(href)}/parameters/upload/{escape(n)}</uws:parameter>"
        for n in (job["params"].get("uploads") or {})
        if "upload" not in tap
    )
    results = ""
    if job["phase"] == "COMPLETED" and job["result_path"]:
        size = os.path.getsize(job["result_path"]) if os.path.exists(job["result_path"]) else None
        attrs = f" mime-type={quoteattr(media_type(job))}" + (f' size="{size}"' if size is not None else "")
        results = (
            f'<uws:result id="result" xlink:type="simple" xlink:href={quoteattr(href + "/results/result")}{attrs}/>'
        )
    error = ""
    if job["phase"] == "ERROR":
        error = (
            f'<uws:errorSummary type="fatal" hasDetail="true">'
            f"<uws:message>{escape(job['error'] or 'Error: the job failed')}</uws:message></uws:errorSummary>"
        )
    elif job["phase"] == "ABORTED":
        error = (
            f'<uws:errorSummary type="transient" hasDetail="false">'
            f"<uws:message>{escape(job['error'] or 'aborted')}</uws:message></uws:errorSummary>"
        )
    info = ""
    if job["result_rows"] is not None:
        info = f"<uws:jobInfo><rows>{job['result_rows']}</rows></uws:jobInfo>"
    body = "".join(
        [
            f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:job {NS} version="1.1">',
            _el("jobId", job["jobid"]),
            _el("runId", tap.get("runid")),
            _el("ownerId", job["owner"]),
            _el("phase", job["phase"]),
            _el("quote", None),
            _el("creationTime", iso(job["created"])),
            _el("startTime", iso(job["started"])),
            _el("endTime", iso(job["finished"])),
            _el("executionDuration", job["timeout_s"]),
            _el("destruction", iso(job["destruction"])),
            f"<uws:parameters>{params}</uws:parameters>",
            f"<uws:results>{results}</uws:results>",
            error,
            info,
            "</uws:job>\n",
        ]
    )
    return body.encode()


def job_list(runner, user: User, base: str, p: Params) -> bytes:
    """The user's TAP jobs, with UWS 1.1's PHASE, AFTER and LAST filters. Anonymous callers
    share one owner name, so they get an empty list: a job id is their only key to a job."""
    jobs = [] if user.anonymous else [j for j in runner.find(user) if j["kind"] == "tap"]
    phases = {v.upper() for v in p.all("PHASE")}
    if phases:
        jobs = [j for j in jobs if j["phase"] in phases]
    else:
        jobs = [j for j in jobs if j["phase"] != "ARCHIVED"]
    if p.get("AFTER"):
        after = parse_time(p.get("AFTER"), "AFTER")
        jobs = [j for j in jobs if j["created"] > after]
    if p.get("LAST"):
        try:
            last = int(p.get("LAST"))
        except ValueError:
            raise StarboxError(f"Error: LAST must be a whole number, not {p.get('LAST')!r}") from None
        if last < 0:
            raise StarboxError("Error: LAST must not be negative")
        jobs = sorted(jobs, key=lambda j: j["created"], reverse=True)[:last]
    refs = "".join(
        f'<uws:jobref id={quoteattr(j["jobid"])} xlink:type="simple" xlink:href={quoteattr(base + "/async/" + j["jobid"])}>'
        f"{_el('phase', j['phase'])}"
        + (
            _el("runId", (j["params"].get("tap") or {}).get("runid"))
            if (j["params"].get("tap") or {}).get("runid")
            else ""
        )
        + f"{_el('ownerId', j['owner'])}{_el('creationTime', iso(j['created']))}</uws:jobref>"
        for j in jobs
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<uws:jobs {NS} version="1.1">{refs}</uws:jobs>\n'.encode()


def _part(job: dict, base: str, tag: str) -> bytes:
    """One element of the job document (parameters, results) as a document of its own."""
    doc = job_xml(job, base).decode()
    start, end = doc.index(f"<uws:{tag}>"), doc.index(f"</uws:{tag}>") + len(f"</uws:{tag}>")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + doc[start:end].replace(f"<uws:{tag}>", f"<uws:{tag} {NS}>", 1)
        + "\n"
    ).encode()


def parameters_xml(job: dict, base: str) -> bytes:
    return _part(job, base, "parameters")


def results_xml(job: dict, base: str) -> bytes:
    return _part(job, base, "results")


def error_document(job: dict) -> bytes:
    if job["phase"] not in ("ERROR", "ABORTED"):
        raise NotFound(f"Error: job {job['jobid']} is {job['phase']}; it has no error")
    return votable.error_document(job["error"] or "Error: the job failed")


def result_file(job: dict):
    if job["phase"] != "COMPLETED":
        raise StarboxError(f"Error: job {job['jobid']} is {job['phase']}; it has no result yet")
    if not job["result_path"] or not os.path.exists(job["result_path"]):
        raise NotFound(f"Error: the result of job {job['jobid']} is gone")
    return job["result_path"], media_type(job)


def wait_seconds(value: str | None) -> float | None:
    """UWS 1.1 WAIT: -1 (or any negative) means as long as the service allows."""
    if value is None:
        return None
    try:
        secs = float(value)
    except ValueError:
        raise StarboxError(f"Error: WAIT must be a number of seconds, not {value!r}") from None
    return MAX_WAIT_S if secs < 0 else min(secs, MAX_WAIT_S)


async def wait(get_job, seconds: float, phase: str | None = None) -> dict:
    """Block while the job stays in an active phase (or in `phase`), at most `seconds`."""
    from starlette.concurrency import run_in_threadpool

    job = await run_in_threadpool(get_job)
    start_phase = job["phase"]
    if start_phase not in ACTIVE or (phase and phase.upper() != start_phase):
        return job
    deadline = time.monotonic() + seconds
    delay = 0.05
    while time.monotonic() < deadline:
        await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 1.5, 0.5)
        job = await run_in_threadpool(get_job)
        if job["phase"] != start_phase:
            break
    return job
