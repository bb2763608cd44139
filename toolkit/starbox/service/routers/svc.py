"""/svc/cutout: Data Lab's cutout service over the simulated DECam images of SMASH field 169.
Thin over starbox.images.cutout; a cutout is rendered on a query thread in the caller's query
slot, like a query."""

from __future__ import annotations

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.concurrency import run_in_threadpool

from starbox.errors import StarboxError
from starbox.images import cutout as cutouts
from starbox.query.run import db_error
from starbox.service.deps import current_user

router = APIRouter()


@router.get("/cutout", response_class=Response)
async def cutout(request: Request):
    """A cutout of one image: FITS (pixels and WCS in the primary HDU), or a PNG with preview=true."""
    q = request.query_params
    s = request.app.state

    def work():
        with s.pools.metadata() as conn:
            return cutouts.cutout(conn, q.get("col"), q.get("siaRef"), q.get("POS"), q.get("SIZE"), q.get("preview"))

    try:
        user = await run_in_threadpool(current_user, request)
        body, media_type = await s.admission.run(user, work)
        return Response(body, media_type=media_type)
    except (StarboxError, psycopg.Error) as exc:
        refusal = exc if isinstance(exc, StarboxError) else db_error(exc)
        retry_after = getattr(refusal, "retry_after", None)
        return PlainTextResponse(
            str(refusal),
            status_code=refusal.status,
            headers={"Retry-After": str(retry_after)} if retry_after is not None else None,
        )
