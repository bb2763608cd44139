"""/storage: Data Lab's Storage Manager over each user's file tree (logic in starbox.storage.ops).

Success codes are the client's: mkdir and ln 201, rm and rmdir 204, cp and mv a body containing
COMPLETED, the rest 200. Download and upload URLs are signed and need no headers.
"""

from __future__ import annotations

import json

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from starlette.requests import ClientDisconnect

from starbox.accounts import User
from starbox.errors import StarboxError
from starbox.service import flags
from starbox.service.app import HELLO
from starbox.service.deps import current_user, token_of
from starbox.storage import ops

router = APIRouter(default_response_class=PlainTextResponse)
# Uploads are bounded by ops while they stream to disk (max_upload_mb, the quota, one xfer chunk),
# not by the service's small default body limit.
STREAMED_BODY_MAX = 1 << 50


def _settings(request: Request):
    return request.app.state.settings


def _length(request: Request) -> int | None:
    length = request.headers.get("content-length")
    return int(length) if length and length.isdigit() else None


@router.get("")
@router.get("/")
def hello() -> str:
    """Says the storage service is up."""
    return HELLO


@router.get("/ls")
def ls(request: Request, name: str = "vos://", format: str = "csv", user: User = Depends(current_user)) -> str:
    """List a storage folder (csv, long text, or JSON)."""
    return ops.ls(_settings(request), user, name, format)


@router.get("/stat")
def stat(request: Request, name: str | None = None, user: User = Depends(current_user)) -> Response:
    """One node's metadata as JSON."""
    result = ops.stat(_settings(request), user, name)
    return Response(json.dumps(result), media_type="application/json")


@router.get("/access")
def access(
    request: Request, name: str | None = None, mode: str | None = None, user: User = Depends(current_user)
) -> str:
    """True if the caller may read (or write, mode=w) the node."""
    return flags.answer(ops.access(_settings(request), user, name, mode))


@router.get("/isdir")
def isdir(request: Request, name: str | None = None, user: User = Depends(current_user)) -> str:
    """True if the node is a folder."""
    return flags.answer(ops.isdir(_settings(request), user, name))


@router.get("/get")
def get(request: Request, name: str | None = None, user: User = Depends(current_user)) -> str:
    """A signed, short-lived download URL for a file."""
    return ops.get_url(_settings(request), user, name, token_of(request))


@router.get("/put")
def put(request: Request, name: str | None = None, user: User = Depends(current_user)) -> str:
    """A signed, short-lived upload URL for a file."""
    return ops.put_url(_settings(request), user, name, token_of(request))


@router.api_route("/file/{token}", methods=["GET", "HEAD"])
@router.api_route("/file/{token}/{filename:path}", methods=["GET", "HEAD"])
def download(request: Request, token: str, filename: str = "") -> FileResponse:
    """Download through a signed URL."""
    grant = ops.signed_grant(_settings(request), token, "get", request.app.state.pools.state_conn)
    path = ops.signed_file(_settings(request), grant)
    return FileResponse(path, media_type="application/octet-stream", filename=path.name)


@router.put("/file/{token}", max_body_size=STREAMED_BODY_MAX)
@router.put("/file/{token}/{filename:path}", max_body_size=STREAMED_BODY_MAX)
async def upload(request: Request, token: str, filename: str = "") -> str:
    """Upload through a signed URL (counted against the quota as it streams)."""
    grant = await anyio.to_thread.run_sync(
        ops.signed_grant, _settings(request), token, "put", request.app.state.pools.state_conn
    )
    try:
        await ops.signed_upload(_settings(request), grant, request.stream(), _length(request))
    except ClientDisconnect:
        raise StarboxError("Error: the upload was interrupted; nothing was stored") from None
    return "OK"


@router.get("/mkdir")
def mkdir(request: Request, dir: str | None = None, user: User = Depends(current_user)) -> Response:
    """Make a folder."""
    ops.mkdir(_settings(request), user, dir)
    return PlainTextResponse("OK", status_code=201)


@router.get("/rm")
def rm(
    request: Request, file: str | None = None, name: str | None = None, user: User = Depends(current_user)
) -> Response:
    """Remove a file."""
    ops.rm(_settings(request), user, file if file is not None else name)
    return Response(status_code=204)


@router.get("/rmdir")
def rmdir(
    request: Request, dir: str | None = None, name: str | None = None, user: User = Depends(current_user)
) -> Response:
    """Remove an empty folder."""
    ops.rmdir(_settings(request), user, dir if dir is not None else name)
    return Response(status_code=204)


@router.get("/cp")
def cp(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    user: User = Depends(current_user),
) -> str:
    """Copy a file (counted against the quota)."""
    return ops.cp(_settings(request), user, from_, to)


@router.get("/mv")
def mv(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    user: User = Depends(current_user),
) -> str:
    """Move or rename a file or folder."""
    return ops.mv(_settings(request), user, from_, to)


@router.get("/ln")
def ln(
    request: Request,
    from_: str | None = Query(None, alias="from"),
    to: str | None = None,
    user: User = Depends(current_user),
) -> Response:
    """Make a link to a file."""
    ops.ln(_settings(request), user, from_, to)
    return PlainTextResponse("OK", status_code=201)


@router.get("/tag")
def tag(
    request: Request,
    name: str | None = None,
    file: str | None = None,
    tag: str | None = None,
    user: User = Depends(current_user),
) -> str:
    """Set a file's tag."""
    return ops.tag(_settings(request), user, name if name is not None else file, tag)


@router.get("/load")
def load(
    request: Request,
    name: str | None = None,
    endpoint: str | None = None,
    is_vospace: str | None = None,
    user: User = Depends(current_user),
) -> str:
    """Have the service fetch a public URL (or copy a storage file) into storage."""
    return ops.load(_settings(request), user, name, endpoint, flags.parse(is_vospace, False, "is_vospace"))


@router.post("/xfer", max_body_size=STREAMED_BODY_MAX)
async def xfer(
    request: Request,
    user: User = Depends(current_user),
    x_dl_filename: str | None = Header(None, alias="X-DL-FileName"),
    x_dl_initxfer: str | None = Header(None, alias="X-DL-InitXfer"),
) -> str:
    """Stage a file in chunks for the MyDB imports (X-DL-FileName, X-DL-InitXfer)."""
    try:
        return await ops.xfer(
            _settings(request),
            user,
            x_dl_filename,
            flags.parse(x_dl_initxfer, False, "X-DL-InitXfer"),
            request.stream(),
            _length(request),
        )
    except ClientDisconnect:
        raise StarboxError("Error: the upload was interrupted; this chunk was not stored") from None


@router.get("/profiles")
def profiles(profile: str | None = None, format: str | None = "text") -> Response:
    """The storage profiles (Starbox has one: default)."""
    result = ops.profiles(profile, format)
    if isinstance(result, str):
        return PlainTextResponse(result)
    return Response(json.dumps(result), media_type="application/json")


@router.get("/services")
def services() -> str:
    """The storage services (Starbox has one)."""
    return (
        "\n                    name   svc   description\n                --------   ----  --------\n"
        "                     vos   vos   Starbox local storage (vos://, <user>://public/)\n"
    )
