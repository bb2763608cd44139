"""/tap: IVOA TAP 1.1 (sync, async UWS 1.1, VOSI, DALI examples). Thin: HTTP in, calls of
starbox.tap out; every refusal is a VOTable error document with a 4xx status."""

from __future__ import annotations

import logging

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from starbox.errors import StarboxError, TooLarge
from starbox.query.run import db_error
from starbox.service.admission import Streamed
from starbox.service.app import body_too_large
from starbox.service.deps import current_user
from starbox.service.inputs import NUL_MESSAGE
from starbox.tap import examples, metadata, params, query, upload, uws, vosi, votable

router = APIRouter(max_body_size=params.MAX_BODY)  # bodies carry UPLOAD tables
XML = "text/xml"
log = logging.getLogger("starbox.tap")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/tap"


def _error(exc: StarboxError) -> Response:
    log.info("TAP refusal %s: %s", exc.status, exc)
    headers = {"WWW-Authenticate": 'Bearer realm="starbox"'} if exc.status == 401 else {}
    if getattr(exc, "retry_after", None) is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return Response(
        votable.error_document(str(exc)), status_code=exc.status, media_type=votable.MEDIA_TYPE, headers=headers
    )


async def _params(request: Request) -> params.Params:
    body = b""
    if request.method in ("POST", "PUT"):
        try:
            body = await request.body()  # the router's max_body_size counts it while it streams in
        except StarletteHTTPException as exc:
            if exc.status_code == 413:
                raise TooLarge(body_too_large(request)) from None
            raise
    p = params.parse(request.url.query, request.headers.get("content-type"), body)
    for name, values in p.values.items():  # the query string is checked before (service.inputs)
        if "\x00" in name or any("\x00" in v for v in values):
            raise StarboxError(NUL_MESSAGE.format(where=f"the {name} parameter"))
    return p


async def _run(request: Request, work, query: bool = False):
    """Parameters parsed, then `work(params, user)` in a worker thread; errors as documents.
    `query`: work runs a query, in the caller's query slot (starbox.service.admission)."""
    try:
        p = await _params(request)
        user = await run_in_threadpool(current_user, request)

        def call():  # UPLOAD by URL fetches with the service's settings, as this caller
            with upload.fetching(request.app.state.settings, user.anonymous):
                return work(p, user)

        if query:
            return await request.app.state.admission.run(user, call)
        return await run_in_threadpool(call)
    except StarboxError as exc:
        return _error(exc)
    except psycopg.Error as exc:  # the database refused or went away: say so, no traceback
        return _error(db_error(exc))


def _state(request: Request):
    s = request.app.state
    return s.settings, s.pools, s.jobs


@router.get("", response_class=PlainTextResponse)
@router.get("/", response_class=PlainTextResponse)
def root(request: Request) -> str:
    """The TAP service's home: what it offers and where."""
    base = _base(request)
    return (
        f"Starbox TAP 1.1 service\n\n  sync:  {base}/sync\n  async: {base}/async\n"
        f"  {base}/capabilities  {base}/tables  {base}/availability  {base}/examples\n"
    )


# -- sync -------------------------------------------------------------------------------------


@router.api_route("/sync", methods=["GET", "POST"])
async def sync(request: Request):
    """TAP sync query: ADQL (or SQL) in, a VOTable, CSV or TSV result out."""
    settings, pools, _ = _state(request)

    def work(p, user):
        fmt, chunks, _ = query.stream(
            pools, user, query.from_params(p, settings), settings.sync_timeout(user.anonymous), settings.row_cap
        )
        return Streamed(chunks, fmt.media_type)

    return await _run(request, work, query=True)


# -- async (UWS) --------------------------------------------------------------------------------


@router.get("/async")
async def job_list(request: Request):
    """The caller's async jobs (UWS job list)."""
    settings, pools, jobs = _state(request)

    def work(p, user):
        uws.purge(jobs)
        return Response(uws.job_list(jobs, user, _base(request), p), media_type=XML)

    return await _run(request, work)


@router.post("/async")
async def create_job(request: Request):
    """Create an async job (PENDING, or started with PHASE=RUN)."""
    settings, pools, jobs = _state(request)

    def work(p, user):
        jobid = uws.create(jobs, settings, user, p)
        return RedirectResponse(f"{_base(request)}/async/{jobid}", status_code=303)

    return await _run(request, work)


@router.get("/async/{jobid}")
async def job(request: Request, jobid: str):
    """One async job (UWS job document)."""
    settings, pools, jobs = _state(request)
    try:
        p = await _params(request)
        user = await run_in_threadpool(current_user, request)
        await run_in_threadpool(uws.purge, jobs)
        seconds = uws.wait_seconds(p.get("WAIT"))
        if seconds:
            found = await uws.wait(lambda: jobs.get(user, jobid), seconds, p.get("PHASE"))
        else:
            found = await run_in_threadpool(jobs.get, user, jobid)
        return Response(uws.job_xml(found, _base(request)), media_type=XML)
    except StarboxError as exc:
        return _error(exc)
    except psycopg.Error as exc:
        return _error(db_error(exc))


@router.post("/async/{jobid}")
@router.post("/async/{jobid}/{part}")
async def change_job(request: Request, jobid: str, part: str | None = None):
    """Change a job's parameters, phase, destruction time or execution duration."""
    settings, pools, jobs = _state(request)
    if part not in (None, "phase", "destruction", "executionduration", "parameters"):
        return _error(StarboxError(f"Error: cannot POST to {part!r} of a job"))

    def work(p, user):
        done = uws.post(jobs, settings, user, jobid, p)
        where = f"{_base(request)}/async" + ("" if done == "deleted" else f"/{jobid}")
        return RedirectResponse(where, status_code=303)

    return await _run(request, work)


@router.delete("/async/{jobid}")
async def delete_job(request: Request, jobid: str):
    """Delete a job and its result."""
    settings, pools, jobs = _state(request)

    def work(p, user):
        uws.delete(jobs, user, jobid)
        return RedirectResponse(f"{_base(request)}/async", status_code=303)

    return await _run(request, work)


@router.get("/async/{jobid}/{part}")
async def job_part(request: Request, jobid: str, part: str):
    """One part of a job: phase, error, quote, parameters, results, ..."""
    settings, pools, jobs = _state(request)

    def work(p, user):
        job = jobs.get(user, jobid)
        base = _base(request)
        text = {
            "phase": lambda: job["phase"],
            "quote": lambda: "",
            "executionduration": lambda: str(job["timeout_s"]),
            "destruction": lambda: uws.iso(job["destruction"]),
            "owner": lambda: job["owner"],
        }
        if part in text:
            return PlainTextResponse(text[part]())
        if part == "error":
            return Response(uws.error_document(job), media_type=votable.MEDIA_TYPE)
        if part == "parameters":
            return Response(uws.parameters_xml(job, base), media_type=XML)
        if part == "results":
            return Response(uws.results_xml(job, base), media_type=XML)
        raise StarboxError(f"Error: a job has no {part!r}; see {base}/async/{jobid}")

    return await _run(request, work)


@router.get("/async/{jobid}/results/result")
async def job_result(request: Request, jobid: str):
    """An async job's result."""
    settings, pools, jobs = _state(request)

    def work(p, user):
        path, media_type = uws.result_file(jobs.get(user, jobid))
        return FileResponse(path, media_type=media_type)

    return await _run(request, work)


# -- VOSI and examples ---------------------------------------------------------------------------


@router.get("/availability")
async def availability(request: Request):
    """VOSI availability: up or not."""
    return await _run(request, lambda p, user: Response(vosi.availability(request.app.state.pools), media_type=XML))


@router.get("/capabilities")
async def capabilities(request: Request):
    """VOSI capabilities: the TAP, ADQL and upload features and limits."""
    settings = request.app.state.settings
    return await _run(
        request,
        lambda p, user: Response(vosi.capabilities(_base(request), settings, anonymous=user.anonymous), media_type=XML),
    )


@router.get("/tables")
async def tables(request: Request):
    """VOSI tables: every table with its columns; a logged-in caller's MyDB tables too."""
    pools = request.app.state.pools
    return await _run(
        request, lambda p, user: Response(metadata.tableset(pools, p.get("detail"), user), media_type=XML)
    )


@router.get("/tables/{name}")
async def table(request: Request, name: str):
    """VOSI tables: one table with its columns."""
    pools = request.app.state.pools

    def work(p, user):
        doc = metadata.table(pools, name, user)
        if doc is None:
            from starbox.errors import NotFound

            raise NotFound(f"Error: no table {name!r}; see {_base(request)}/tables for the list")
        return Response(doc, media_type=XML)

    return await _run(request, work)


@router.get("/examples")
async def examples_doc(request: Request):
    """DALI examples: ADQL queries that run on this Starbox's catalogs."""
    pools = request.app.state.pools
    return await _run(
        request, lambda p, user: Response(examples.document(pools, _base(request)), media_type="application/xhtml+xml")
    )
