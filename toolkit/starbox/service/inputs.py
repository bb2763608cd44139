"""Checks on a request's raw input before any router sees it.

A NUL byte is refused wherever it can come in as text: the path, the query string (raw or as
%00) and the headers. PostgreSQL cannot store NUL in text (psycopg refuses to send it), and no
name, token, password or query of this service has a use for it; refusing it here answers 400
once, instead of a 500 from whichever endpoint passes it to the database. Form fields in bodies
are checked where they are parsed (TAP's parameters); file bodies may hold any byte.
"""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from starbox.tap import scs, votable

NUL_MESSAGE = "Error: a NUL byte (%00) is not allowed in {where}"


def nul_in(scope: Scope) -> str | None:
    """Where the request has a NUL byte (for the message), or None."""
    if "\x00" in scope.get("path", ""):
        return "the path"
    query = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return "the query parameters"
    for name, value in scope.get("headers", ()):
        if b"\x00" in name or b"\x00" in value:
            return f"the {name.decode('latin-1')} header"
    return None


def refusal(path: str, message: str, status: int) -> Response:
    """TAP and cone search answer with their error VOTables; the rest with one line of text."""
    if path.startswith("/tap"):
        return Response(votable.error_document(message), status_code=status, media_type=votable.MEDIA_TYPE)
    if path.startswith("/scs"):
        return Response(scs.error_document(message), status_code=status, media_type=votable.MEDIA_TYPE)
    return PlainTextResponse(message, status_code=status)


class RefuseNul:
    """ASGI middleware: 400 for a NUL byte in the path, query string or headers."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = nul_in(scope) if scope["type"] == "http" else None
        if where is None:
            return await self.app(scope, receive, send)
        await refusal(scope.get("path", ""), NUL_MESSAGE.format(where=where), 400)(scope, receive, send)
