"""The service's OpenAPI document (/openapi.json, /docs) as the service really answers.

FastAPI derives a document from the routes' signatures: 200 in the route's response class (JSON
for routes that build their own Response) and a 422 that this service never sends (bad input is
400, one line of text: app.py's handlers). Here every operation gets the status codes and media
types it really answers with, the error bodies of its family (one line of text for Data Lab's
API, a DALI/SCS error VOTable for TAP and cone search, a JSON object for the webhook), and the
parameters that routes read by hand (TAP's and cone search's DALI parameters, `async`).
The schemathesis fuzzing in tests/test_fuzz.py holds the service to this document.

The routers stay as they are: `describe(app)` replaces `app.openapi`, so the document is built
the first time it is asked for, after every router was mounted.
"""

from __future__ import annotations

import copy
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI

from starbox.query.formats import FORMATS
from starbox.tap import votable

TEXT, JSON, XML, VOTABLE = "text/plain", "application/json", "text/xml", votable.MEDIA_TYPE
OCTETS, XHTML = "application/octet-stream", "application/xhtml+xml"
RESULTS = tuple(dict.fromkeys(f.media_type for f in FORMATS.values()))  # /query/query's ofmt
TAP_RESULTS = (VOTABLE, "text/csv", "text/tab-separated-values", "application/fits", "application/vnd.apache.parquet")

# What each status means here (the description of every response with that code).
MEANING = {
    200: "Success.",
    201: "Created.",
    202: "Accepted: the work runs in the background.",
    204: "Done; no content.",
    303: "See Other: the job's URL (UWS) in Location.",
    400: "Bad input (a missing or malformed parameter, a NUL byte, a query PostgreSQL or the ADQL parser "
    "refuses, a query stopped at its time limit); the body says what and why.",
    401: "No valid login: the token is not valid, the password is wrong, or the call needs a logged-in user.",
    403: "Not permitted: the caller may not do or reach this (privileges, another user's data, a refused "
    "statement kind or address).",
    404: "Not found: no such job, table, file, profile or published table.",
    409: "Conflict: the table, file or index exists already, or the job is past the phase that allows this.",
    413: "Too large: the request body, an upload, a quota or a result size limit.",
    429: "Too many requests in flight for this caller (or too many login attempts); retry after Retry-After seconds.",
    503: "The database is busy or unreachable; try again in a moment.",
}
HEADERS = {
    303: {"Location": {"description": "The job (or the job list).", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}},
}
ERROR_BODY = {
    TEXT: {"type": "string", "description": "One line: the message (most start with 'Error: ')."},
    VOTABLE: {
        "type": "string",
        "description": 'A VOTable error document: INFO name="QUERY_STATUS" '
        'value="ERROR" with the message (cone search adds INFO name="Error").',
    },
    JSON: {
        "type": "object",
        "required": ["status", "reason"],
        "properties": {"status": {"type": "string", "enum": ["refused"]}, "reason": {"type": "string"}},
    },
}
HOOK_ANSWER = {
    "type": "object",
    "required": ["status", "reason"],
    "properties": {"status": {"type": "string", "enum": ["ok", "ignored", "accepted"]}, "reason": {"type": "string"}},
}


def _string(description: str = "", enum: list[str] | None = None) -> dict:
    out: dict = {"type": "string"}
    if description:
        out["description"] = description
    if enum:
        out["enum"] = enum
    return out


@dataclass
class Op:
    """One operation: success statuses and their media types, error statuses, extra parameters."""

    ok: dict[int, tuple[str, ...]]
    errors: str  # "400 401 ..."
    error_type: tuple[str, ...] = (TEXT,)
    query: dict[str, dict] = field(default_factory=dict)  # parameters read by hand (query string)
    form: dict[str, dict] = field(default_factory=dict)  # ... or from a form body (TAP POSTs)
    body: dict | None = None  # a request body the route reads as it is (media type -> schema)
    ok_schema: dict | None = None
    # Per-status media types where an error can come from two layers (the NUL check, the body limit).
    error_types: dict[int, tuple[str, ...]] = field(default_factory=dict)


def text(errors: str = "400", status: int = 200, **kw) -> Op:
    return Op({status: (TEXT,)}, errors, **kw)


# DALI parameters (names are case-insensitive; DALI 1.1 section 3.1).
TAP_QUERY = {
    "REQUEST": _string("doQuery (optional)"),
    "LANG": _string("ADQL (ADQL-2.0, ADQL-2.1)"),
    "QUERY": _string("The ADQL query."),
    "FORMAT": _string("votable, votable/td, csv, tsv, fits, parquet"),
    "RESPONSEFORMAT": _string("As FORMAT."),
    "MAXREC": _string("Most rows to return."),
    "UPLOAD": _string("name,param:part (a multipart part) or name,URL."),
    "RUNID": _string(),
}
UWS_CHANGE = {
    "PHASE": _string("RUN or ABORT"),
    "ACTION": _string("DELETE"),
    "DESTRUCTION": _string("ISO 8601 time"),
    "EXECUTIONDURATION": _string("seconds"),
}
CONE = {
    "RA": _string("degrees [0, 360]"),
    "DEC": _string("degrees [-90, 90]"),
    "SR": _string("degrees"),
    "VERB": _string("1, 2 or 3"),
}
FILE = {OCTETS: {"type": "string", "format": "binary"}}
SIA = {
    "POS": _string("ra,dec in degrees"),
    "SIZE": _string("width[,height] in degrees"),
    "VERB": _string(),
    "FORMAT": _string(),
    "INTERSECT": _string(),
}
CUTOUT = {
    "col": _string("the collection"),
    "siaRef": _string("the image, from an SIA result"),
    "extn": _string("the HDU (0)"),
    "POS": _string("ra,dec in degrees"),
    "SIZE": _string("width[,height] in degrees"),
    "preview": _string("true: a PNG"),
}
TAP_ERR: dict[str, Any] = {"error_type": (VOTABLE,)}
TOKEN_ERRORS = "400 401 503"  # any route that reads the caller's token: a bad one is 401

# Every route, by "METHOD[ METHOD] path". A route missing here gets DEFAULT (and a test says so).
TABLE: dict[str, Op] = {
    "GET /": text(),
    "GET /auth": text(),
    "GET /auth/": text(),
    "GET /query": text(),
    "GET /query/": text(),
    "GET /res": text(),
    "GET /res/": text(),
    "GET /storage": text(),
    "GET /storage/": text(),
    "GET /storage/services": text(),
    # /auth: booleans are the bodies True / False.
    "GET /auth/login": text("400 401 429 503"),
    "GET /auth/logout": text("400 401 503"),
    "GET /auth/isValidToken": text("400 503"),
    "GET /auth/isValidUser": text("400 503"),
    "GET /auth/isValidPassword": text("400 429 503"),
    "GET /auth/isUserLoggedIn": text("400 503"),
    "GET /auth/isTokenLoggedIn": text("400 503"),
    "GET /auth/hasAccess": text("400 503"),
    "GET /auth/passwordReset": text("400 401 403 503"),
    # /query: a result in the format asked (ofmt), "OK" for out=, a job id for async=true.
    "GET POST /query/query": Op(
        {200: RESULTS},
        "400 401 403 404 409 413 429 503",
        query={"async": _string("true: run as an async job and answer its id")},
    ),
    "GET /query/status": text("400 401 404 503"),
    "GET /query/results": Op({200: RESULTS}, "400 401 404 503"),
    "GET /query/error": text("400 401 404 503"),
    "GET /query/abort": text("400 401 404 409 503"),
    "GET /query/schema": text("400 401 404 503"),
    "GET /query/profiles": text("400 404"),
    "GET /query/services": text("400 404"),
    # /query's MyDB calls: logged-in users only.
    "GET /query/list": text("400 401 403 404 503"),
    "GET POST /query/create": text("400 401 403 404 409 413 503"),
    "GET POST /query/ingest": text("400 401 403 404 409 413 503"),
    "GET POST /query/import": text("400 401 403 404 409 413 503"),
    "GET /query/truncate": text("400 401 403 404 503"),
    "GET /query/index": text("400 401 403 404 409 503"),
    "GET /query/delete": text("400 401 403 404 503"),
    "GET /query/rename": text("400 401 403 404 409 503"),
    "GET /query/copy": text("400 401 403 404 409 413 503"),
    "GET /query/flush": text("400 401 403 503"),
    "GET /res/findJobs": text("400 401 403 404 503"),
    # /res: the caller's own user record.
    "GET /res/get": text("400 401 403 503"),
    "GET /res/set": text("400 401 403 503"),
    "GET /res/listFields": text(),
    "GET /res/pwReset": text("400 401 403 503"),
    "GET /res/create": text("400 403"),
    # /storage
    "GET /storage/ls": text("400 401 403 404 503"),
    "GET /storage/stat": Op({200: (JSON,)}, "400 401 403 404 503", ok_schema={"type": "object"}),
    "GET /storage/access": text(TOKEN_ERRORS),
    "GET /storage/isdir": text("400 401 403 404 503"),
    "GET /storage/get": text("400 401 403 404 503"),
    "GET /storage/put": text("400 401 403 404 409 503"),
    "GET HEAD /storage/file/{token}": Op({200: (OCTETS,)}, "400 403 404"),
    "GET HEAD /storage/file/{token}/{filename}": Op({200: (OCTETS,)}, "400 403 404"),
    "PUT /storage/file/{token}": text("400 403 404 409 413 503", body=FILE),
    "PUT /storage/file/{token}/{filename}": text("400 403 404 409 413 503", body=FILE),
    "GET /storage/mkdir": text("400 401 403 404 409 503", status=201),
    "GET /storage/rm": Op({204: ()}, "400 401 403 404 409 503"),
    "GET /storage/rmdir": Op({204: ()}, "400 401 403 404 409 503"),
    "GET /storage/cp": text("400 401 403 404 409 413 503"),
    "GET /storage/mv": text("400 401 403 404 409 503"),
    "GET /storage/ln": text("400 401 403 404 409 503", status=201),
    "GET /storage/tag": text("400 401 403 404 503"),
    "GET /storage/load": text("400 401 403 404 409 413 503"),
    "POST /storage/xfer": text("400 401 403 404 409 413 503", body=FILE),
    "GET /storage/profiles": Op({200: (TEXT, JSON)}, "400 404"),
    # /tap: every refusal is a VOTable error document.
    "GET /tap": text(**TAP_ERR),
    "GET /tap/": text(**TAP_ERR),
    "GET /tap/sync": Op({200: TAP_RESULTS}, "400 401 403 404 413 429 503", query=TAP_QUERY, **TAP_ERR),
    "POST /tap/sync": Op({200: TAP_RESULTS}, "400 401 403 404 413 429 503", form=TAP_QUERY, **TAP_ERR),
    "GET /tap/async": Op(
        {200: (XML,)},
        "400 401 503",
        query={
            "PHASE": _string("Only jobs in this phase (repeatable)."),
            "AFTER": _string("ISO 8601 time"),
            "LAST": _string("The last N jobs."),
        },
        **TAP_ERR,
    ),
    "POST /tap/async": Op(
        {303: ()}, "400 401 403 404 409 413 429 503", form={**TAP_QUERY, "PHASE": _string("RUN")}, **TAP_ERR
    ),
    "GET /tap/async/{jobid}": Op(
        {200: (XML,)},
        "400 401 404 503",
        query={"WAIT": _string("Seconds to wait while the job is active (UWS 1.1)."), "PHASE": _string()},
        **TAP_ERR,
    ),
    "POST /tap/async/{jobid}": Op({303: ()}, "400 401 404 409 413 503", form=UWS_CHANGE, **TAP_ERR),
    "POST /tap/async/{jobid}/{part}": Op({303: ()}, "400 401 404 409 413 503", form=UWS_CHANGE, **TAP_ERR),
    "DELETE /tap/async/{jobid}": Op({303: ()}, "400 401 404 503", **TAP_ERR),
    "GET /tap/async/{jobid}/{part}": Op({200: (TEXT, XML, VOTABLE)}, "400 401 404 503", **TAP_ERR),
    "GET /tap/async/{jobid}/results/result": Op({200: TAP_RESULTS}, "400 401 404 503", **TAP_ERR),
    "GET /tap/availability": Op({200: (XML,)}, TOKEN_ERRORS, **TAP_ERR),
    "GET /tap/capabilities": Op({200: (XML,)}, TOKEN_ERRORS, **TAP_ERR),
    "GET /tap/tables": Op({200: (XML,)}, TOKEN_ERRORS, query={"detail": _string("min or max")}, **TAP_ERR),
    "GET /tap/tables/{name}": Op({200: (XML,)}, "400 401 404 503", **TAP_ERR),
    "GET /tap/examples": Op({200: (XHTML,)}, TOKEN_ERRORS, **TAP_ERR),
    # /scs: Simple Cone Search 1.03; its refusals are SCS error VOTables.
    "GET /scs": text("400 503", error_types={400: (VOTABLE,)}),
    "GET /scs/": text("400 503", error_types={400: (VOTABLE,)}),
    "GET /scs/{schema}/{table}": Op({200: (VOTABLE,)}, "400 401 403 404 413 429 503", query=CONE, **TAP_ERR),
    # Images: SIA 1.0 (refusals are SIA error VOTables) and the cutout service (FITS or PNG).
    "GET /sia/{collection}": Op({200: (VOTABLE,)}, "400 404", query=SIA, **TAP_ERR),
    "GET /svc/cutout": Op({200: ("image/fits", "image/png")}, "400 401 404 429 503", query=CUTOUT),
    # The webhook answers JSON; the NUL check and the service's body limit answer one line of text.
    "POST /hooks/notebooks": Op(
        {200: (JSON,), 202: (JSON,)},
        "400 401 404 413",
        error_type=(JSON,),
        ok_schema=HOOK_ANSWER,
        body={JSON: {"type": "object"}},
        error_types={400: (JSON, TEXT), 413: (JSON, TEXT)},
    ),
}
DEFAULT = Op({200: (TEXT,)}, "400 401 403 404 409 413 429 503")


def table() -> dict[tuple[str, str], Op]:
    """TABLE by (METHOD, path)."""
    out = {}
    for key, op in TABLE.items():
        *methods, path = key.split()
        for method in methods:
            out[(method, path)] = op
    return out


def _content(types: tuple[str, ...], schema: dict | None) -> dict:
    return {t: {"schema": schema or ERROR_BODY.get(t) or {"type": "string"}} for t in types}


def responses(op: Op) -> dict:
    out: dict[str, dict[str, Any]] = {}
    for status, types in op.ok.items():
        r: dict[str, Any] = {"description": MEANING[status]}
        if types:
            r["content"] = {t: {"schema": op.ok_schema or {"type": "string"}} for t in types}
        if status in HEADERS:
            r["headers"] = HEADERS[status]
        out[str(status)] = r
    for status in map(int, op.errors.split()):
        types = op.error_types.get(status, op.error_type)
        r = {"description": MEANING[status], "content": {t: {"schema": ERROR_BODY[t]} for t in types}}
        if status in HEADERS:
            r["headers"] = HEADERS[status]
        out[str(status)] = r
    return out


def _operation_id(method: str, path: str) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_") or "root"
    return f"{method.lower()}_{name}" + ("_slash" if len(path) > 1 and path.endswith("/") else "")


def document(default: dict) -> dict:
    """FastAPI's document with each operation's real answers and parameters."""
    doc = copy.deepcopy(default)
    doc["info"].setdefault("description", "Astro Data Lab's HTTP API, TAP 1.1 and Simple Cone Search, in one box.")
    ops = table()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            op = ops.get((method.upper(), path), DEFAULT)
            operation["operationId"] = _operation_id(method, path)
            operation["responses"] = responses(op)
            params = operation.setdefault("parameters", [])
            for name, schema in op.query.items():
                params.append({"name": name, "in": "query", "required": False, "schema": schema})
            if not params:
                operation.pop("parameters")
            if op.form:
                form = {"schema": {"type": "object", "properties": op.form}}
                operation["requestBody"] = {
                    "required": False,
                    "content": {"application/x-www-form-urlencoded": form, "multipart/form-data": form},
                }
            elif op.body:
                operation["requestBody"] = {
                    "required": False,
                    "content": {t: {"schema": sch} for t, sch in op.body.items()},
                }
    schemas = doc.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):  # the 422 this service never sends
        schemas.pop(unused, None)
    if "components" in doc and not schemas:
        doc["components"].pop("schemas", None)
        if not doc["components"]:
            doc.pop("components")
    return doc


def describe(app: FastAPI) -> None:
    """Serve `document()` of FastAPI's own document as the app's OpenAPI document, built when
    first asked for (after every router was mounted) and again only if the routes change."""
    built: dict = {}

    def openapi() -> dict:
        with warnings.catch_warnings():  # FastAPI's duplicate operation ids (one per route, not per method)
            warnings.simplefilter("ignore", UserWarning)
            default = FastAPI.openapi(app)
        if built.get("from") is not default:
            built.update({"from": default, "doc": document(default)})
        return built["doc"]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to replace it
