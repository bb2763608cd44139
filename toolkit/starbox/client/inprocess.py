"""The toolkit's in-process mode: the service's own application, run inside this Python process.

With `STARBOX_TOOLKIT_MODE=inprocess` (or `starbox.inprocess.start()`), the toolkit's calls do
not go over the network: each one is handed to the FastAPI application that `starbox up` serves,
running on an event loop in a background thread here. The routers, the plain functions under
them, the checks, the status codes and the messages are therefore exactly the service's, and
`authClient`, `queryClient` and `storeClient` behave the same in both modes. What changes:

* no service process has to run (PostgreSQL has to: `starbox up`, or an external database);
* nothing crosses a socket; results still stream, with backpressure (a bounded queue between
  the application and the caller), so a big result is never held whole in memory;
* it needs what the service needs: the appliance's secrets under $STARBOX_HOME/secrets, which
  only the appliance's owner can read. It is for the CLI, tests, admin scripts and batch work
  on the appliance's machine; everyone else uses the service URL.

Async jobs run in this process's worker pool. The service's start-up recovery (which ends every
EXECUTING job as ERROR) is not run here, since the service may be running jobs of its own; when
this process ends first, its own unfinished jobs end as ERROR with the reason.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from urllib.parse import unquote

import httpx

from starbox import keys
from starbox import settings as settings_mod
from starbox.client import mode
from starbox.errors import Unavailable
from starbox.settings import Settings

QUEUE_DEPTH = 8  # response chunks in flight between the application and the caller
START_TIMEOUT = 60

_lock = threading.Lock()
_transport: InProcessTransport | None = None


def check_home(settings: Settings) -> None:
    """Refuse to start where the service's secrets are not readable (and never make new ones)."""
    needed = [keys.path(settings, name) for name in (keys.SERVICE_PASSWORD, keys.ROLES_KEY)]
    for path in needed:
        if not os.access(path, os.R_OK):
            raise Unavailable(
                f"Error: the toolkit's in-process mode needs the appliance's secrets, and {path} "
                f"{'is not readable by this user' if path.exists() else 'does not exist'}. Run it as "
                f"the appliance's owner with STARBOX_HOME={settings.home} after `starbox up`, or use "
                f"the service over HTTP (STARBOX_TOOLKIT_MODE=http)."
            )


class _Exchange:
    """One request's trip through the application: the ASGI receive/send pair and its queue."""

    def __init__(self, body: bytes):
        self.body = body
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_DEPTH)
        self.closed = asyncio.Event()
        self._sent_body = False

    async def receive(self) -> dict:
        if not self._sent_body:
            self._sent_body = True
            return {"type": "http.request", "body": self.body, "more_body": False}
        await self.closed.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict) -> None:
        if self.closed.is_set():
            return  # as a server drops what is sent on a closed connection (ASGI 2.3)
        await self.queue.put(message)

    def close(self) -> None:
        """On the loop: the caller is gone. receive() now says so, which makes Starlette stop the
        response and close the result (cancelling its query); a send waiting on a full queue is
        unblocked."""
        self.closed.set()
        while not self.queue.empty():
            self.queue.get_nowait()

    async def run(self, app, scope: dict) -> None:
        try:
            await app(scope, self.receive, self.send)
        except Exception as exc:  # noqa: BLE001 - handed to the caller, who reports it
            await self.queue.put({"type": "starbox.failed", "error": exc})
        else:
            await self.queue.put({"type": "starbox.done"})


class _Body(httpx.SyncByteStream):
    """The response body as the application sends it, chunk by chunk."""

    def __init__(self, transport: InProcessTransport, exchange: _Exchange, task: concurrent.futures.Future):
        self._transport, self._exchange, self._task = transport, exchange, task

    def __iter__(self):
        while True:
            message = self._transport.next_message(self._exchange)
            kind = message["type"]
            if kind == "http.response.body":
                if message.get("body"):
                    yield message["body"]
                if not message.get("more_body", False):
                    return
            elif kind == "starbox.failed":
                error = message["error"]
                raise httpx.RemoteProtocolError(f"the response stopped: {error}")
            elif kind == "starbox.done":
                return

    def close(self) -> None:
        if not self._task.done():  # the caller stopped reading before the end
            self._transport.loop.call_soon_threadsafe(self._exchange.close)


class InProcessTransport(httpx.BaseTransport):
    """An httpx transport that serves every request with the service application in this process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.loop: asyncio.AbstractEventLoop | None = None
        self._app = None
        self._stop: asyncio.Event | None = None
        self._lifespan: concurrent.futures.Future | None = None
        self._start_lock = threading.Lock()
        self.pid = os.getpid()

    # -- life cycle ---------------------------------------------------------------------------
    def _ensure_started(self) -> None:
        with self._start_lock:
            if self.loop is not None:
                return
            check_home(self.settings)
            from starbox.service.app import create_app

            app = create_app(self.settings, in_process=True)
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="starbox-inprocess", daemon=True).start()
            ready: concurrent.futures.Future = concurrent.futures.Future()
            lifespan = asyncio.run_coroutine_threadsafe(self._run_lifespan(app, ready), loop)
            try:
                ready.result(timeout=START_TIMEOUT)
            except BaseException:
                lifespan.cancel()
                loop.call_soon_threadsafe(loop.stop)
                raise
            self.loop, self._app, self._lifespan = loop, app, lifespan
            _register_exit(_at_exit)

    async def _run_lifespan(self, app, ready: concurrent.futures.Future) -> None:
        self._stop = asyncio.Event()
        try:
            async with app.router.lifespan_context(app):
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            raise

    # httpx calls close() when a client is dropped; this transport lives as long as the process
    # (or until stop()), so that is not the moment to stop the application.
    def shutdown(self) -> None:
        """Stop the application (its jobs end as ERROR if unfinished) and its event loop."""
        with self._start_lock:
            loop, lifespan = self.loop, self._lifespan
            self.loop = self._app = self._lifespan = None
        if loop is None:
            return
        loop.call_soon_threadsafe(self._stop.set)
        try:
            lifespan.result(timeout=30)
        except Exception:  # noqa: BLE001 - shutting down: nothing left to tell
            pass
        loop.call_soon_threadsafe(loop.stop)

    # -- requests -----------------------------------------------------------------------------
    def next_message(self, exchange: _Exchange) -> dict:
        return asyncio.run_coroutine_threadsafe(exchange.queue.get(), self.loop).result()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            self._ensure_started()
        except Exception as exc:  # noqa: BLE001 - the toolkit turns this into its one-line message
            raise httpx.ConnectError(str(exc)) from exc
        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": unquote(url.path),
            "raw_path": url.raw_path.split(b"?", 1)[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 0),
            "server": (url.host, url.port or 80),
            "state": {},
        }
        exchange = _Exchange(request.read())
        task = asyncio.run_coroutine_threadsafe(exchange.run(self._app, scope), self.loop)
        message = self.next_message(exchange)
        if message["type"] != "http.response.start":
            error = message.get("error")
            raise httpx.RemoteProtocolError(f"the in-process service sent no response ({error or 'nothing'})")
        return httpx.Response(
            message["status"], headers=message.get("headers", []), stream=_Body(self, exchange, task), request=request
        )


def transport(settings: Settings | None = None) -> InProcessTransport:
    """This process's in-process service (one per process: a forked child makes its own)."""
    global _transport
    with _lock:
        if _transport is None or _transport.pid != os.getpid():
            _transport = InProcessTransport(settings or settings_mod.get())
        return _transport


def start(settings: Settings | None = None) -> None:
    """Switch this process's toolkit to the in-process mode (with these settings) and start it."""
    stop()
    global _transport
    new = InProcessTransport(settings or settings_mod.get())
    new._ensure_started()  # refusals (no secrets, ...) raise here, leaving the toolkit on HTTP
    with _lock:
        _transport = new
    mode.set_mode("inprocess")


def stop() -> None:
    """Stop the in-process service (if it runs) and send the toolkit's calls over HTTP again."""
    global _transport
    with _lock:
        current, _transport = _transport, None
    if current is not None and current.pid == os.getpid():
        current.shutdown()
    mode.set_mode("http")


def _at_exit() -> None:
    if _transport is not None and _transport.pid == os.getpid():
        _transport.shutdown()


# Python joins the job workers' threads (concurrent.futures) before it runs atexit hooks, so an
# atexit hook would wait for every running query to end. threading's own exit hooks run before
# that join (newest first), which is where concurrent.futures registers itself too.
_register_exit = getattr(threading, "_register_atexit", atexit.register)
