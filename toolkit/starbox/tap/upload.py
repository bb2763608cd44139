"""TAP UPLOAD (TAP 1.1 section 3.6): `UPLOAD=t,param:part` with the VOTable in a multipart part.

An uploaded table reaches the query as a common table expression over unnest() of one array per
column, so `TAP_UPLOAD.t` can be joined like any table. A temporary table would need the
TEMPORARY privilege, which anonymous users rightly lack (tests/test_isolation.py); the CTE needs
no privilege at all and PostgreSQL still knows its row count. The catalog side of a
cross-match keeps its index (geometry.py puts it inside q3c_join).
"""

from __future__ import annotations

import io
import re
import warnings
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import numpy as np
from psycopg import sql as pgsql

from starbox.errors import StarboxError, TooLarge
from starbox.settings import Settings
from starbox.tap.adql import upload_table

MAX_BYTES = 64 << 20  # per request, all uploads together
MAX_ROWS = 1_000_000  # per uploaded table
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
FETCH_DEADLINE = 60.0  # seconds an UPLOAD by URL may take
_fetching: ContextVar[tuple[object, bool]] = ContextVar("starbox_tap_fetching", default=(Settings(), True))

# VOTable datatype -> PostgreSQL array element type
PG_TYPES = {
    "boolean": "boolean",
    "bit": "boolean",
    "unsignedByte": "smallint",
    "short": "smallint",
    "int": "integer",
    "long": "bigint",
    "float": "real",
    "double": "double precision",
    "char": "text",
    "unicodeChar": "text",
}


@dataclass
class Uploaded:
    name: str  # the table name in TAP_UPLOAD
    columns: list[tuple[str, str]]  # (column name, PostgreSQL type)
    values: list[list]  # one Python list per column
    rows: int


def parse_param(value: str | None) -> list[tuple[str, str]]:
    """UPLOAD=a,param:x;b,http://... -> [(a, 'param:x'), (b, 'http://...')]."""
    out = []
    for item in filter(None, (v.strip() for v in (value or "").split(";"))):
        name, sep, uri = item.partition(",")
        name, uri = name.strip(), uri.strip()
        if not sep or not name or not uri:
            raise StarboxError(f"Error: UPLOAD must be 'table,param:part' (or several, separated by ';'), not {item!r}")
        if not NAME.match(name):
            raise StarboxError(f"Error: invalid upload table name {name!r}: use letters, digits and underscores")
        if not uri.startswith(("param:", "http://", "https://")):
            raise StarboxError(
                f"Error: UPLOAD {name}: use param:part (a part of a multipart POST) or an http(s) URL, not {uri!r}"
            )
        out.append((name, uri))
    names = [n.lower() for n, _ in out]
    if len(set(names)) != len(names):
        raise StarboxError("Error: UPLOAD names a table twice")
    return out


def resolve(name: str, uri: str, files: dict[str, bytes]) -> bytes:
    """The VOTable an UPLOAD names: a multipart part, or a document fetched by URL."""
    if uri.startswith("param:"):
        part = uri[len("param:") :]
        if part not in files:
            raise StarboxError(f"Error: UPLOAD {name}: the request has no multipart part named {part!r}")
        return files[part]
    return fetch(name, uri)


def fetch(name: str, url: str) -> bytes:
    """UPLOAD by URL (a TAP standard feature, anonymous too) through starbox.outbound: public
    addresses only (and the admin's fetch_allow_hosts), every redirect checked, capped."""
    from starbox import outbound

    settings, anonymous = _fetching.get()
    try:
        return outbound.fetch_bytes(
            settings,
            url,
            limit=MAX_BYTES,
            deadline=FETCH_DEADLINE,
            anonymous=anonymous,
            too_large=f"Error: {url} is larger than {MAX_BYTES >> 20} MB",
        )
    except StarboxError as exc:
        raise type(exc)(f"Error: UPLOAD {name}: " + str(exc).removeprefix("Error: ")) from None


@contextmanager
def fetching(settings, anonymous: bool):
    """The settings and caller that UPLOAD-by-URL fetches inside this block are made for (the
    router sets them; without it, the defaults hold: public addresses only, as anonymous)."""
    token = _fetching.set((settings, anonymous))
    try:
        yield
    finally:
        _fetching.reset(token)


def read_votable(name: str, data: bytes) -> Uploaded:
    """The first table of a VOTable, as column lists ready for SQL."""
    from astropy.io.votable import parse

    if len(data) > MAX_BYTES:
        raise TooLarge(f"Error: uploaded table {name} is larger than {MAX_BYTES >> 20} MB")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = parse(io.BytesIO(data), verify="ignore").get_first_table()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StarboxError(f"Error: uploaded table {name} is not a readable VOTable: {first}") from None
    array = table.array
    if len(array) > MAX_ROWS:
        raise TooLarge(f"Error: uploaded table {name} has {len(array):,} rows; the limit is {MAX_ROWS:,}")
    columns, values, seen = [], [], set()
    for f in table.fields:
        cname = (f.name or f.ID or "").strip().lower()
        if not NAME.match(cname):
            cname = re.sub(r"\W", "_", cname) or f"col{len(columns) + 1}"
        if cname in seen:
            raise StarboxError(f"Error: uploaded table {name} has two columns named {cname}")
        seen.add(cname)
        col = array[f.name] if f.name in array.dtype.names else array[f.ID]
        is_array = f.datatype not in ("char", "unicodeChar") and f.arraysize not in (None, "1")
        pg_type = "text" if is_array else PG_TYPES.get(f.datatype, "text")
        if (f.xtype or "").lower() in ("timestamp", "adql:timestamp") and pg_type == "text":
            pg_type = "timestamp"  # so the result says xtype="timestamp" again
        columns.append((cname, pg_type))
        values.append(_values(col, pg_type))
    return Uploaded(name, columns, values, len(array))


def _values(col, pg_type: str) -> list:
    mask = np.ma.getmaskarray(col)
    data = np.ma.getdata(col)
    if pg_type in ("real", "double precision"):
        out = data.astype(float).tolist()
    elif pg_type in ("smallint", "integer", "bigint"):
        out = data.astype(np.int64).tolist()
    elif pg_type == "boolean":
        out = data.astype(bool).tolist()
    else:
        out = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in data.tolist()]
    if mask.ndim > 1:
        mask = mask.all(axis=tuple(range(1, mask.ndim)))
    return [None if m else v for v, m in zip(out, mask.tolist())]


_WITH = re.compile(r"(?i)^\s*WITH\s")


def cte(tables: list[Uploaded]) -> list[str]:
    """The WITH list elements that make each upload a table of the query."""
    parts = []
    for t in tables:
        cols = ", ".join(pgsql.Identifier(c).as_string(None) for c, _ in t.columns)
        arrays = ", ".join(f"{pgsql.Literal(v).as_string(None)}::{typ}[]" for v, (_, typ) in zip(t.values, t.columns))
        if not t.columns:
            raise StarboxError(f"Error: uploaded table {t.name} has no columns")
        parts.append(f"{upload_table(t.name)}({cols}) AS (SELECT * FROM unnest({arrays}))")
    return parts


def attach(sql: str, used: set[str], uploads: dict[str, bytes]) -> str:
    """The query with the uploaded tables it names in front of it."""
    known = {n.lower(): n for n in uploads}
    missing = sorted(used - set(known))
    if missing:
        raise StarboxError(
            f"Error: the query reads TAP_UPLOAD.{missing[0]}, but no table of that name was "
            f"uploaded (UPLOAD={missing[0]},param:partname)"
        )
    total = sum(len(v) for v in uploads.values())
    if total > MAX_BYTES:
        raise TooLarge(f"Error: the uploads are larger than {MAX_BYTES >> 20} MB together")
    parts = cte([read_votable(known[n], uploads[known[n]]) for n in sorted(used)])
    if not parts:
        return sql
    own = _WITH.match(sql)  # the query's own WITH list goes on after the uploads
    if own:
        return "WITH " + ",\n".join(parts) + ",\n" + sql[own.end() :]
    return "WITH " + ",\n".join(parts) + "\n" + sql
