"""/query: Data Lab's Query Manager (queries, async jobs, metadata). MyDB calls are in mydb.py."""

from __future__ import annotations

import math

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import FileResponse, PlainTextResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from starbox import metadata
from starbox.accounts import User
from starbox.errors import StarboxError, Unauthorized
from starbox.jobs import JobSpec
from starbox.mydb import table_name
from starbox.query import Limits, formats, run_to_mydb, stream
from starbox.results import is_storage_uri, save_to_storage
from starbox.service import flags
from starbox.service.admission import Streamed
from starbox.service.app import HELLO
from starbox.service.deps import current_user
from starbox.tap.query import prepare_data_lab

router = APIRouter(default_response_class=PlainTextResponse)


def _timeout(raw: str | None, ceiling: int) -> int:
    try:
        asked = float(raw) if raw not in (None, "") else 300.0
    except ValueError:
        asked = math.nan
    if not math.isfinite(asked):  # 1e400 is inf: no number of seconds
        raise StarboxError(f"Error: X-DL-TimeoutRequest must be a number of seconds, not {raw!r}")
    return ceiling if asked <= 0 else max(1, min(int(asked), ceiling))


@router.get("/")
@router.get("")
def hello() -> str:
    """Says the query service is up."""
    return HELLO


@router.api_route("/query", methods=["GET", "POST"])
async def query(
    request: Request,
    user: User = Depends(current_user),
    sql: str | None = None,
    adql: str | None = None,
    ofmt: str = "csv",
    out: str | None = None,
    drop: str = "False",
    profile: str = "default",
    x_dl_timeoutrequest: str | None = Header(None, alias="X-DL-TimeoutRequest"),
):
    """Run SQL or ADQL: the rows in the asked format, to storage (out=vos://), to MyDB
    (out=mydb://), or as an async job (async=True)."""
    s = request.app.state.settings
    is_async = flags.parse(request.query_params.get("async"), False, "async")  # a Python keyword, so read it by hand
    out = (out or "").strip()
    if out in ("None", "none"):
        out = ""
    fmt = formats.get(ofmt)  # refuse an unknown format before any work
    if is_async:
        spec = JobSpec(
            query=adql or sql or "",
            lang="adql" if adql else "sql",
            ofmt=fmt.name,
            out_uri=out if (out.startswith("mydb://") or is_storage_uri(out, user)) else None,
            drop=flags.parse(drop, False, "drop"),
            timeout_s=_timeout(x_dl_timeoutrequest, s.async_timeout(user.anonymous)),
        )
        return await run_in_threadpool(_submit, request, user, spec, sql, adql)
    limits = Limits(_timeout(x_dl_timeoutrequest, s.sync_timeout(user.anonymous)), s.row_cap)
    if out.startswith("mydb://") and user.anonymous:
        raise StarboxError("Error: out=mydb:// needs a logged-in user")
    pools = request.app.state.pools

    def work():
        # In the caller's query slot: translation and the query (starbox.service.admission).
        prepared = prepare_data_lab(pools, user, sql=sql, adql=adql)
        if out.startswith("mydb://"):
            with pools.user(user) as conn:
                run_to_mydb(
                    conn, prepared, user.schema, table_name(user, out).name, flags.parse(drop, False, "drop"), limits
                )
            return "OK"
        if out and is_storage_uri(out, user):
            return _save(request, user, prepared, fmt.name, limits, out)
        result_fmt, chunks = stream(lambda: pools.user(user), prepared, fmt.name, limits)
        return Streamed(chunks, result_fmt.media_type)

    return await request.app.state.admission.run(user, work)


def _submit(request: Request, user: User, spec: JobSpec, sql: str | None, adql: str | None) -> str:
    if user.anonymous and spec.out_uri:  # refused now, not as the job's error
        raise Unauthorized("Error: anonymous jobs cannot write to storage or MyDB; log in first")
    # syntax and mydb:// checks answer now, not in the job
    prepare_data_lab(request.app.state.pools, user, sql=sql, adql=adql)
    if spec.out_uri and spec.out_uri.startswith("mydb://"):
        table_name(user, spec.out_uri)
    return request.app.state.jobs.submit(user, spec)


def _save(request: Request, user: User, prepared, fmt_name: str, limits: Limits, out: str) -> str:
    _, chunks = stream(lambda: request.app.state.pools.user(user), prepared, fmt_name, limits)
    try:
        save_to_storage(request.app.state.settings, user, out, chunks)
    finally:
        chunks.close()  # a refused save stops the query too
    return "OK"


@router.get("/status")
def status(request: Request, jobid: str = "", user: User = Depends(current_user)) -> str:
    """An async job's phase (QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED)."""
    return request.app.state.jobs.get(user, jobid)["phase"]


@router.get("/results")
def results(request: Request, jobid: str = "", delete: str = "False", user: User = Depends(current_user)):
    """An async job's result (delete=True forgets it once sent)."""
    jobs = request.app.state.jobs
    path, fmt = jobs.result_file(user, jobid)
    cleanup = BackgroundTask(jobs.forget_result, jobid) if flags.parse(delete, False, "delete") else None
    return FileResponse(path, media_type=fmt.media_type, background=cleanup)


@router.get("/error")
def error(request: Request, jobid: str = "", user: User = Depends(current_user)) -> str:
    """Why an async job ended in ERROR."""
    job = request.app.state.jobs.get(user, jobid)
    return job["error"] or ""


@router.get("/abort")
def abort(request: Request, jobid: str = "", user: User = Depends(current_user)) -> str:
    """Stop an async job."""
    return request.app.state.jobs.abort(user, jobid)


@router.get("/schema")
def schema(request: Request, value: str = "", format: str = "text", profile: str = "default") -> str:
    """The schemas, one schema's tables, or one table's columns."""
    with request.app.state.pools.metadata() as conn:
        return metadata.schema_text(conn, value)


@router.get("/profiles")
def profiles(request: Request, profile: str | None = None, format: str = "text") -> str:
    """The query service profiles (Starbox has one: default)."""
    return metadata.profiles(request.app.state.settings, profile, "query")


@router.get("/services")
def services(
    request: Request, name: str | None = None, type: str | None = None, mode: str = "list", profile: str = "default"
) -> str:
    """The services this Starbox offers (Data Lab's service list)."""
    return metadata.services(request.app.state.settings, name, type, mode)
