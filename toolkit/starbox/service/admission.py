"""Admission of queries: a bounded number in flight per caller class, refused at once beyond it.

Anonymous callers share one allowance (anon_queries_in_flight), each logged-in user has their own
(user_queries_in_flight). The check runs on the event loop before a thread or a connection is
taken, so a refusal (429 with Retry-After) costs nothing, and no request waits in a thread for a
connection. Admitted queries run on their own worker threads (query_threads), so slow queries
never take the threads that logins, metadata and `GET /` need; a query waiting for one of those
threads waits on the event loop.

A slot is held until the query's result is fully sent, or the client went away.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable, Iterator

import anyio
from anyio import to_thread
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from starbox.accounts import User
from starbox.errors import TooManyRequests
from starbox.settings import Settings

RETRY_AFTER_S = 5
_END = object()


@dataclass
class Streamed:
    """What a query's work returns when its result is to be streamed (starbox.query.run.Chunks)."""

    chunks: Iterator[bytes]
    media_type: str


class Slot:
    def __init__(self, admission: Admission, key: str):
        self._admission, self._key, self._held = admission, key, True

    def release(self) -> None:
        if self._held:  # once, whichever of the ways out comes first
            self._held = False
            self._admission._leave(self._key)


class Admission:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.threads = anyio.CapacityLimiter(max(1, settings.query_threads))
        self._in_flight: dict[str, int] = {}
        self._lock = threading.Lock()  # slots are released from worker threads too

    def limit(self, user: User) -> int:
        s = self.settings
        return s.anon_queries_in_flight if user.anonymous else s.user_queries_in_flight

    def enter(self, user: User) -> Slot:
        """A slot for one query of this caller class, or TooManyRequests at once."""
        limit = self.limit(user)
        with self._lock:
            n = self._in_flight.get(user.role, 0)
            if n >= limit:
                who = "anonymous callers (all together)" if user.anonymous else f"user {user.name}"
                hint = "; log in for an allowance of your own" if user.anonymous else ""
                raise TooManyRequests(
                    f"Error: too many queries in flight: {who} may run {limit} at once; "
                    f"try again in a few seconds{hint}",
                    retry_after=RETRY_AFTER_S,
                )
            self._in_flight[user.role] = n + 1
        return Slot(self, user.role)

    def _leave(self, key: str) -> None:
        with self._lock:
            n = self._in_flight.get(key, 0) - 1
            if n > 0:
                self._in_flight[key] = n
            else:
                self._in_flight.pop(key, None)

    async def run(self, user: User, work: Callable[[], object]):
        """Admit the query, then `work()` on a query thread. A Streamed result becomes the
        response that streams it; the slot is given back when the query is over."""
        slot = self.enter(user)
        try:
            result = await to_thread.run_sync(work, limiter=self.threads)
        except BaseException:
            slot.release()
            raise
        if not isinstance(result, Streamed):
            slot.release()
            return result
        body = self._chunks(result.chunks, slot)
        return StreamingResponse(body, media_type=result.media_type, background=BackgroundTask(body.aclose))

    async def _chunks(self, chunks, slot: Slot):
        """The chunks, each fetched on a query thread; when the response ends or the client is
        gone (Starlette's background task closes this generator), the query is closed, which
        cancels it and gives its connection back, and the slot is released."""
        it = iter(chunks)
        try:
            while (chunk := await to_thread.run_sync(next, it, _END, limiter=self.threads)) is not _END:
                yield chunk
        finally:
            close = getattr(chunks, "close", None)
            try:
                if close:
                    with anyio.CancelScope(shield=True):
                        await to_thread.run_sync(close, limiter=self.threads)
            finally:
                slot.release()
