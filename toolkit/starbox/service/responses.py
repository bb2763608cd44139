"""Streamed query results as HTTP responses."""

from __future__ import annotations

from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask


def streamed(chunks, media_type: str) -> StreamingResponse:
    """Stream a result (starbox.query.run.Chunks). When the client goes away mid-way, Starlette
    stops sending and runs the background task, which closes the chunks: that cancels the query
    and frees its connection at once, instead of whenever the garbage collector gets to it."""
    close = getattr(chunks, "close", None)
    return StreamingResponse(chunks, media_type=media_type, background=BackgroundTask(close) if close else None)
