"""/sia/<collection>: SIA 1.0 over the simulated DECam images of SMASH field 169, as Data Lab
serves it. Thin over starbox.images.sia; refusals are SIA error VOTables with a 4xx status."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from starbox.errors import StarboxError
from starbox.images import sia
from starbox.tap import votable

router = APIRouter()


@router.get("/{collection}")
async def search(request: Request, collection: str):
    """SIA 1.0: the images overlapping POS=ra,dec and SIZE=w[,h] (degrees), as a VOTable."""
    q = request.query_params
    base = str(request.base_url).rstrip("/")
    try:
        coll = sia.collection(collection)
        body = await run_in_threadpool(sia.search, base, coll, q.get("POS"), q.get("SIZE"))
        return Response(body, media_type=votable.MEDIA_TYPE)
    except StarboxError as exc:
        return Response(sia.error_document(str(exc)), status_code=exc.status, media_type=votable.MEDIA_TYPE)
