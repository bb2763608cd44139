"""/scs: Simple Cone Search 1.03 on every published table with a position. Thin over
starbox.tap.scs; refusals are SCS error VOTables (INFO name="Error") with a 4xx status."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from starbox.errors import StarboxError
from starbox.query.run import db_error
from starbox.service.admission import Streamed
from starbox.service.deps import current_user
from starbox.tap import params, scs, votable

router = APIRouter()


@router.get("", response_class=PlainTextResponse)
@router.get("/", response_class=PlainTextResponse)
async def index(request: Request) -> str:
    """The tables cone search serves, one per line."""
    base = str(request.base_url).rstrip("/") + "/scs"
    return await run_in_threadpool(scs.index, request.app.state.pools, base)


@router.get("/{schema}/{table}")
async def cone(request: Request, schema: str, table: str):
    """Simple Cone Search on a catalog table: RA, DEC, SR in degrees; a VOTable."""
    s = request.app.state

    def work():
        p = params.parse(request.url.query, None, b"")
        media_type, chunks = scs.cone(s.pools, s.settings, user, schema, table, p)
        return Streamed(chunks, media_type)

    try:
        user = await run_in_threadpool(current_user, request)
        return await s.admission.run(user, work)  # a cone is a query: the caller's query slot
    except (StarboxError, psycopg.Error) as exc:
        refusal = exc if isinstance(exc, StarboxError) else db_error(exc)
        retry_after = getattr(refusal, "retry_after", None)
        return Response(
            scs.error_document(str(refusal)),
            status_code=refusal.status,
            media_type=votable.MEDIA_TYPE,
            headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
        )
