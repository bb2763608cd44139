"""The FastAPI application: routers, error handling, and the resources they share."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.body_limit import MAX_BODY_SIZE_SCOPE_KEY

from starbox import adql_translate
from starbox.errors import StarboxError
from starbox.settings import Settings

log = logging.getLogger("starbox.service")
HELLO = "Hello World! This is Starbox."


def body_too_large(request: Request) -> str:
    limit = request.scope.get(MAX_BODY_SIZE_SCOPE_KEY)
    size = f"the {limit / (1 << 20):g} MB" if limit else "the size"
    return f"Error: the request body is larger than {size} allowed here"


async def _starbox_error(request: Request, exc: Exception) -> PlainTextResponse:
    assert isinstance(exc, StarboxError)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return PlainTextResponse(str(exc), status_code=exc.status, headers=headers)


async def _bad_request(request: Request, exc: Exception) -> PlainTextResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in exc.errors())
    return PlainTextResponse(f"Error: bad request: {problems}", status_code=400)


async def _http_error(request: Request, exc: Exception) -> PlainTextResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 413:  # the body limit (Starlette's own message names no size)
        return PlainTextResponse(body_too_large(request), status_code=413)
    return PlainTextResponse(f"Error: {exc.detail}", status_code=exc.status_code)


async def _unexpected(request: Request, exc: Exception) -> PlainTextResponse:
    # Logged with its traceback for the admin; the user gets one line.
    log.exception("unexpected error on %s", request.url.path)
    return PlainTextResponse(f"Error: internal error ({type(exc).__name__}); see the service log", status_code=500)


def _answer_errors_in_one_line(app: FastAPI) -> None:
    """Every failure is one plain line with its status: ours, FastAPI's validation, Starlette's
    HTTP errors, and anything unexpected (a 500 that names the exception, never a traceback)."""
    app.add_exception_handler(StarboxError, _starbox_error)
    app.add_exception_handler(RequestValidationError, _bad_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)


def create_app(settings: Settings, in_process: bool = False) -> FastAPI:
    """The service. `in_process`: run inside a toolkit user's process (starbox.inprocess), where
    another process (the service) may be running jobs, so none are recovered at start, and this
    process's own unfinished jobs end as ERROR when it stops."""
    from starbox.jobs import JobRunner
    from starbox.service import manual
    from starbox.service.admission import Admission
    from starbox.service.inputs import RefuseNul
    from starbox.service.openapi import describe
    from starbox.service.pools import Pools
    from starbox.service.routers import ROUTERS

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.pools = Pools(settings)
        app.state.jobs = JobRunner(settings, app.state.pools)
        if not in_process:
            app.state.jobs.recover()
            adql_translate.pool(settings)  # the ADQL workers start with the service, not on the first query
        for hook in app.state.startup:
            hook(app)
        try:
            yield
        finally:
            for hook in app.state.shutdown:
                hook(app)
            app.state.jobs.shutdown(abandon_queued=in_process)
            app.state.pools.close()
            if not in_process:
                adql_translate.shutdown()

    # /docs/ is the user manual (service/manual.py); the OpenAPI browser is /apidocs.
    # Request bodies are counted while they stream in (a body without Content-Length too):
    # past the limit, 413. TAP and storage uploads set larger limits on their routes.
    app = FastAPI(
        title="Starbox",
        lifespan=lifespan,
        docs_url="/apidocs",
        redoc_url=None,
        max_body_size=settings.max_body_mb << 20,
    )
    app.add_middleware(RefuseNul)
    app.state.settings = settings
    app.state.admission = Admission(settings)
    app.state.startup, app.state.shutdown = [], []

    _answer_errors_in_one_line(app)

    @app.get("/", response_class=PlainTextResponse)
    def root() -> str:
        """Says the service is up."""
        return HELLO

    for router, prefix in ROUTERS():
        app.include_router(router, prefix=prefix)
    manual.mount(app, settings)
    describe(app)  # the real status codes and media types of each route (service/openapi.py)
    return app
