"""TAP_SCHEMA, read: units and UCDs for result columns, and the VOSI tables document.

Result columns are matched to TAP_SCHEMA by where PostgreSQL says they come from (table OID and
column number of the row description), so aliases and subqueries keep their units. The map is
cached per process and refreshed when a table OID it does not know shows up (a catalog was
loaded or reloaded) or after a minute.
"""

from __future__ import annotations

import threading
import time
from xml.sax.saxutils import escape, quoteattr

from starbox.catalogs import registry
from starbox.query import formats
from starbox.tap.votable import GEOMETRIES, Field, field_for, geometry_field

REFRESH_S = 60.0
_lock = threading.Lock()
_cache: dict = {"at": 0.0, "by_oid": {}, "misses": set(), "geometry_types": {}}

# Computed columns that queryparser names: a unit and UCD for them too.
COMPUTED = {
    "distance": {"unit": "deg", "ucd": "pos.angDistance"},
    "adql_area": {"unit": "deg**2", "ucd": "phys.angArea"},
}


def _load(pools) -> dict:
    with pools.metadata() as conn:
        rows = registry.column_origins(conn)
        geometry_types = dict(
            conn.execute("SELECT oid, typname FROM pg_type WHERE typname = ANY(%s)", (list(GEOMETRIES),)).fetchall()
        )
    by_oid: dict[int, dict[int, dict]] = {}
    for oid, attnum, unit, ucd, utype, xtype, description in rows:
        by_oid.setdefault(oid, {})[attnum] = dict(unit=unit, ucd=ucd, utype=utype, xtype=xtype, description=description)
    return by_oid, geometry_types


def column_meta(pools, columns: list[formats.Column]) -> list[dict | None]:
    """TAP_SCHEMA's unit, UCD, utype, xtype and description for each result column (or None)."""
    oids = {c.table_oid for c in columns if c.table_oid}
    with _lock:
        stale = time.monotonic() - _cache["at"] > REFRESH_S
        unknown = oids - set(_cache["by_oid"]) - _cache["misses"]
    if stale or unknown:
        by_oid, geometry_types = _load(pools)
        with _lock:
            _cache.update(at=time.monotonic(), by_oid=by_oid, misses=oids - set(by_oid), geometry_types=geometry_types)
    with _lock:
        by_oid = _cache["by_oid"]
        return [by_oid.get(c.table_oid, {}).get(c.table_col) if c.table_oid else COMPUTED.get(c.name) for c in columns]


def result_fields(pools, columns: list[formats.Column]) -> list[Field]:
    unique = formats.arrow_schema(columns)  # the names the data carries (ra, ra_1 for repeats)
    metas = column_meta(pools, columns)
    geometry_types = _cache["geometry_types"]
    return [
        geometry_field(f.name, geometry_types[c.type_oid], meta)
        if c.type_oid in geometry_types
        else field_for(f.name, f.type, meta)
        for f, c, meta in zip(unique, columns, metas)
    ]


# -- VOSI tables -----------------------------------------------------------------------------

VOSI_NS = (
    'xmlns:vosi="http://www.ivoa.net/xml/VOSITables/v1.0"'
    ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)


def _el(tag: str, value) -> str:
    return f"<{tag}>{escape(str(value))}</{tag}>" if value not in (None, "") else ""


def _table_xml(table_row, cols, keys, detail: bool = True) -> str:
    _, _, _, name, ttype, description, utype = table_row
    out = [
        f"<table type={quoteattr(ttype or 'table')}>",
        _el("name", name),
        _el("description", description),
        _el("utype", utype),
    ]
    if detail:
        for _, cname, cdesc, unit, ucd, cutype, datatype, arraysize, xtype, principal, indexed, std in cols:
            attrs = [
                f"arraysize={quoteattr(arraysize)}" if arraysize else "",
                f"extendedType={quoteattr(xtype)}" if xtype else "",
            ]
            out += [
                "<column>",
                _el("name", cname),
                _el("description", cdesc),
                _el("unit", unit),
                _el("ucd", ucd),
                _el("utype", cutype),
                f'<dataType xsi:type="vs:VOTableType" {" ".join(a for a in attrs if a)}>{escape(datatype)}</dataType>',
                "<flag>indexed</flag>" if indexed else "",
                "<flag>primary</flag>" if principal else "",
                "<flag>std</flag>" if std else "",
                "</column>",
            ]
        for key_id in dict.fromkeys(k[0] for k in keys):
            rows = [k for k in keys if k[0] == key_id]
            _, _, target, kdesc, kutype, _, _ = rows[0]
            out += ["<foreignKey>", _el("targetTable", target)]
            out += [f"<fkColumn>{_el('fromColumn', k[5])}{_el('targetColumn', k[6])}</fkColumn>" for k in rows]
            out += [_el("description", kdesc), _el("utype", kutype), "</foreignKey>"]
    out.append("</table>")
    return "".join(out)


def _as_caller(pools, user):
    """TAP_SCHEMA as the caller sees it: a user's own role adds their MyDB (schema `mydb`)."""
    return pools.metadata() if user is None or user.anonymous else pools.user(user)


def tableset(pools, detail: str | None = None, user=None) -> bytes:
    """/tables: every schema and table of TAP_SCHEMA, with columns unless detail=min."""
    with _as_caller(pools, user) as conn:
        tables, cols, keys = registry.tap_schema_rows(conn)
    full = (detail or "max").lower() != "min"
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n', f"<vosi:tableset {VOSI_NS}>"]
    schema = None
    for row in tables:
        if row[0] != schema:
            if schema is not None:
                out.append("</schema>")
            schema = row[0]
            out += ["<schema>", _el("name", row[0]), _el("description", row[1]), _el("utype", row[2])]
        # A MyDB table keeps its columns even with detail=min: pyvo fetches each table's own
        # document without the caller's session (so without its token), and would get a 404.
        detail_here = full or row[0] == "mydb"
        out.append(
            _table_xml(row, [c for c in cols if c[0] == row[3]], [k for k in keys if k[1] == row[3]], detail_here)
        )
    if schema is not None:
        out.append("</schema>")
    out.append("</vosi:tableset>\n")
    return "".join(out).encode()


def table(pools, name: str, user=None) -> bytes | None:
    """/tables/<name>: one table with its columns (VOSI 1.1), or None if there is no such table."""
    with _as_caller(pools, user) as conn:
        tables, cols, keys = registry.tap_schema_rows(conn, name)
        if not tables:  # names are case-insensitive in ADQL
            found = registry.tap_table_name(conn, name)
            if found:
                tables, cols, keys = registry.tap_schema_rows(conn, found)
    if not tables:
        return None
    body = _table_xml(tables[0], cols, keys).replace("<table ", f"<vosi:table {VOSI_NS} ", 1)
    body = body[: -len("</table>")] + "</vosi:table>"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n").encode()


def positional_tables(pools) -> list[dict]:
    """Tables with a position (columns with UCDs pos.eq.ra/dec;meta.main): the cone-search targets."""
    with pools.metadata() as conn:
        rows = registry.positional_rows(conn)
    return [dict(table=r[0], description=r[1], ra=r[2], dec=r[3], id=r[4]) for r in rows if r[2] and r[3]]
