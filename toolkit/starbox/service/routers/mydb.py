"""/query's MyDB calls (Data Lab's mydb_* functions): thin HTTP over starbox.mydb.

Parameters arrive in the query string as the `dl` client sends them (POST bodies are empty).
Success is 200 `OK` (or the listing); every refusal is one line with a 4xx status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from starbox import mydb
from starbox.accounts import User
from starbox.errors import StarboxError
from starbox.service import flags
from starbox.service.deps import logged_in_user
from starbox.settings import Settings

router = APIRouter(default_response_class=PlainTextResponse)


def _ctx(request: Request) -> tuple[Any, Settings]:
    return request.app.state.pools, request.app.state.settings


def _int(value: str, param: str) -> int | None:
    if value in ("", "None"):
        return None
    try:
        return int(value)
    except ValueError:
        raise StarboxError(f"Error: {param} must be a whole number, not {value!r}") from None


@router.get("/list")
def mydb_list(request: Request, table: str = "", index: str = "False", user: User = Depends(logged_in_user)) -> str:
    """The user's MyDB tables, or one table's columns (index=True adds its indexes)."""
    return mydb.list_tables(*_ctx(request), user, table or None, flags.parse(index, False, "index"))


@router.api_route("/create", methods=["POST", "GET"])
def mydb_create(
    request: Request, table: str = "", schema: str = "", drop: str = "True", user: User = Depends(logged_in_user)
) -> str:
    """Create a MyDB table from a column list (drop=True replaces one of that name)."""
    return mydb.create_table(*_ctx(request), user, table, schema, flags.parse(drop, True, "drop"))


@router.api_route("/ingest", methods=["POST", "GET"])
def mydb_ingest(
    request: Request,
    table: str = "",
    filename: str = "",
    csv_header: str = "True",
    delimiter: str = ",",
    user: User = Depends(logged_in_user),
) -> str:
    """Append a staged CSV file to an existing MyDB table."""
    return mydb.ingest(*_ctx(request), user, table, filename, flags.parse(csv_header, True, "csv_header"), delimiter)


@router.api_route("/import", methods=["POST", "GET"])
def mydb_import(
    request: Request,
    table: str = "",
    filename: str = "",
    delimiter: str = ",",
    append: str = "False",
    csv_header: str = "True",
    schema_def: str = "",
    extnum: str = "",
    extname: str = "",
    drop: str = "True",
    user: User = Depends(logged_in_user),
) -> str:
    """Load a staged file, a storage file or a URL (CSV, FITS, Parquet, ...) into a MyDB table."""
    return mydb.import_table(
        *_ctx(request),
        user,
        table,
        filename,
        delimiter=delimiter,
        append=flags.parse(append, False, "append"),
        csv_header=flags.parse(csv_header, True, "csv_header"),
        schema_def=schema_def,
        extnum=_int(extnum, "extnum"),
        extname=extname if extname != "None" else "",
        drop=flags.parse(drop, True, "drop"),
    )


@router.get("/truncate")
def mydb_truncate(request: Request, table: str = "", user: User = Depends(logged_in_user)) -> str:
    """Empty a MyDB table."""
    return mydb.truncate_table(*_ctx(request), user, table)


@router.get("/index")
def mydb_index(
    request: Request,
    tbl: str = "",
    col: str = "",
    q3c: str = "",
    cluster: str = "False",
    table: str = "",
    user: User = Depends(logged_in_user),
) -> str:
    """Index a column of a MyDB table (q3c= makes a position index on ra,dec)."""
    return mydb.index_table(
        *_ctx(request), user, tbl or table, col, q3c or None, flags.parse(cluster, False, "cluster")
    )


@router.get("/delete")
def mydb_delete(request: Request, table: str = "", user: User = Depends(logged_in_user)) -> str:
    """Drop a MyDB table."""
    return mydb.drop_table(*_ctx(request), user, table)


@router.get("/rename")
def mydb_rename(request: Request, source: str = "", target: str = "", user: User = Depends(logged_in_user)) -> str:
    """Rename a MyDB table."""
    return mydb.rename_table(*_ctx(request), user, source, target)


@router.get("/copy")
def mydb_copy(request: Request, source: str = "", target: str = "", user: User = Depends(logged_in_user)) -> str:
    """Copy a MyDB table under a new name."""
    return mydb.copy_table(*_ctx(request), user, source, target)


@router.get("/flush")
def mydb_flush(request: Request, user: User = Depends(logged_in_user)) -> str:
    """Drop every table of the user's MyDB."""
    return mydb.flush(*_ctx(request), user)
