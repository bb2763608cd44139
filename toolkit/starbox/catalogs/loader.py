"""The generic catalog loader: stream a file into PostgreSQL with COPY, index it, describe it.

The whole load is one transaction: rows are copied into a temporary table, written out in
q3c-pixel order under a staging name, indexed, and swapped in for the old table. A failure or
Ctrl-C at any point rolls everything back, so no partial table is ever visible.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from starbox import database
from starbox.catalogs import readers, registry
from starbox.catalogs.manifest import Manifest, split_table
from starbox.catalogs.registry import ColumnMeta
from starbox.errors import StarboxError

RA_NAMES = ("ra", "raj2000", "ra_icrs", "ra_deg")
DEC_NAMES = ("dec", "dej2000", "decj2000", "de_icrs", "dec_deg")


@dataclass
class LoadResult:
    table: str
    rows: int
    seconds: float
    spatial: bool


def _progress(reader: readers.Reader, enabled: bool) -> Progress:
    size = DownloadColumn() if reader.unit == "bytes" else MofNCompleteColumn()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        size,
        TimeRemainingColumn(),
        disable=not enabled,
        transient=True,
    )


def _columns(reader: readers.Reader, manifest: Manifest | None) -> list[registry.ColumnMeta]:
    """The table's columns: the manifest's, in its order, then any others the file has."""
    by_name = {c.name: c for c in reader.columns}
    out = []
    if manifest and manifest.columns:
        missing = [c.name for c in manifest.columns if c.name not in by_name]
        if missing:
            raise StarboxError(f"{reader.path}: column(s) {', '.join(missing)} of the manifest are not in the file")
    ordered = [c.name for c in (manifest.columns if manifest else [])] + [
        n for n in by_name if not (manifest and manifest.column(n))
    ]
    for name in ordered:
        fc = by_name[name]
        mc = manifest.column(name) if manifest else None
        out.append(
            registry.ColumnMeta(
                name=name,
                pg_type=(mc.type if mc and mc.type else readers.pg_type(fc.type, name, reader.path)),
                unit=(mc.unit if mc and mc.unit else fc.unit),
                ucd=(mc.ucd if mc and mc.ucd else fc.ucd),
                description=(mc.description if mc and mc.description else fc.description),
                principal=bool(mc.principal) if mc and mc.principal is not None else False,
            )
        )
    return out


def _position(columns: list[registry.ColumnMeta], ra: str | None, dec: str | None, path: Path):
    names = {c.name: c for c in columns}
    if ra is None and dec is None:
        ra = next((n for n in RA_NAMES if n in names), None)
        dec = next((n for n in DEC_NAMES if n in names), None)
        if ra is None or dec is None:
            return None, None
    for given in (ra, dec):
        col = names.get(readers.clean_name(given or ""))
        if col is None:
            raise StarboxError(f"{path}: no column {given!r} for the position (have: {', '.join(names)})")
        if col.pg_type not in ("double precision", "real", "numeric", "integer", "bigint", "smallint"):
            raise StarboxError(f"{path}: position column {given!r} is {col.pg_type}, not a number")
    return readers.clean_name(ra or ""), readers.clean_name(dec or "")


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s", (schema, table)).fetchone()
        is not None
    )


def load(
    conn: psycopg.Connection,
    path: Path,
    table: str,
    *,
    ra: str | None = None,
    dec: str | None = None,
    manifest: Manifest | None = None,
    replace: bool = False,
    pgsphere: bool | None = None,
    progress: bool = True,
) -> LoadResult:
    """Load `path` into `table` (schema.table) on an admin connection; see the module docstring."""
    started = time.perf_counter()
    schema, name = split_table(table)
    path = Path(path)
    if manifest and manifest.table != table:
        raise StarboxError(f"manifest {manifest.path} describes {manifest.table}, not {table}")
    if table_exists(conn, schema, name) and not replace:
        raise StarboxError(f"{table} already exists: add --replace to overwrite it")
    types = {c.name: c.type for c in manifest.columns if c.type} if manifest else None
    reader = readers.open_reader(path, types)
    columns = _columns(reader, manifest)
    ra, dec = _position(
        columns, ra or (manifest.ra if manifest else None), dec or (manifest.dec if manifest else None), path
    )
    _describe_position(columns, ra, dec)
    pgsphere = bool(manifest.pgsphere if (pgsphere is None and manifest) else pgsphere)
    if pgsphere and not ra:
        raise StarboxError(f"{table}: a pgsphere index needs ra and dec columns")

    ident = {
        "schema": sql.Identifier(schema),
        "name": sql.Identifier(name),
        "staging": sql.Identifier(f"_load_{name}"[:63]),
    }
    # Local buffers for the temporary copy; only settable before a session's first temp table,
    # and setting the same value again later is a no-op.
    conn.execute("SET temp_buffers = '256MB'")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema} AUTHORIZATION starbox_owner").format(**ident))
        cur.execute(sql.SQL("GRANT USAGE ON SCHEMA {schema} TO starbox_public").format(**ident))
        rows = _copy_into_temp(cur, reader, columns, path, progress)
        order = (
            sql.SQL(" ORDER BY q3c_ang2ipix({}, {})").format(sql.Identifier(ra), sql.Identifier(dec))
            if ra
            else sql.SQL("")
        )
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {schema}.{staging}").format(**ident))
        cur.execute(
            sql.SQL("CREATE TABLE {schema}.{staging} AS SELECT * FROM _load{order}").format(order=order, **ident)
        )
        _index_and_swap(cur, ident, name, _indexes(name, columns, ra, dec, pgsphere), clustered=bool(ra))
        registry.refresh_tbl_stat(cur, schema, name, rows)
        registry.register(
            cur,
            schema,
            name,
            manifest.description if manifest else "",
            manifest.schema_description if manifest else "",
            columns,
        )
    return LoadResult(table, rows, time.perf_counter() - started, bool(ra))


def _describe_position(columns: list[ColumnMeta], ra: str | None, dec: str | None) -> None:
    for col in columns:
        # The position columns are degrees by the loader's contract: say so to TAP and SCS.
        if col.name == ra:
            col.ucd, col.unit = col.ucd or "pos.eq.ra;meta.main", col.unit or "deg"
        elif col.name == dec:
            col.ucd, col.unit = col.ucd or "pos.eq.dec;meta.main", col.unit or "deg"
        col.indexed = col.name in (ra, dec)
        col.principal = col.principal or col.indexed or bool(col.ucd and "meta.main" in col.ucd)


def _copy_into_temp(cur: psycopg.Cursor, reader, columns: list[ColumnMeta], path: Path, progress: bool) -> int:
    """COPY the file into a temporary table _load (dropped at commit); returns its rows."""
    coldefs = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(c.pg_type)) for c in columns)
    cur.execute(sql.SQL("CREATE TEMP TABLE _load ({}) ON COMMIT DROP").format(coldefs))
    names = [c.name for c in columns]
    with _progress(reader, progress) as bar:
        task = bar.add_task(f"loading {path.name}", total=reader.total)
        options = sql.SQL("FORMAT csv, HEADER {}, DELIMITER {}").format(
            sql.SQL("true" if reader.copy_header else "false"), sql.Literal(reader.copy_delimiter)
        )
        copy_sql = sql.SQL("COPY _load ({}) FROM STDIN ({})").format(
            sql.SQL(", ").join(map(sql.Identifier, reader.copy_columns(names))), options
        )
        try:
            with cur.copy(copy_sql) as copy:
                for chunk in reader.copy_chunks(names):
                    copy.write(chunk)
                    bar.update(task, completed=reader.done)
        except (psycopg.errors.DataError, psycopg.errors.BadCopyFileFormat) as exc:
            raise copy_error(exc, path, reader.copy_line_is) from None
        return database.scalar(cur, "SELECT count(*) FROM _load")


def _indexes(
    name: str, columns: list[ColumnMeta], ra: str | None, dec: str | None, pgsphere: bool
) -> list[tuple[str, sql.Composable]]:
    """(index name, what follows ON table) of the position, pgsphere and main-id indexes."""
    indexes: list[tuple[str, sql.Composable]] = []
    if ra and dec:
        indexes.append(
            (f"{name}_q3c_idx", sql.SQL("(q3c_ang2ipix({}, {}))").format(sql.Identifier(ra), sql.Identifier(dec)))
        )
    if pgsphere and ra and dec:
        # The expression queryparser emits for ADQL geometry, so translated queries hit it too;
        # spoint3 also gives index-ordered nearest-neighbour search (<->).
        indexes.append(
            (
                f"{name}_spoint_idx",
                sql.SQL("USING gist (spoint(radians({}), radians({})) spoint3)").format(
                    sql.Identifier(ra), sql.Identifier(dec)
                ),
            )
        )
    for col in columns:
        if col.ucd and "meta.id;meta.main" in col.ucd:
            indexes.append((f"{name}_{col.name}_idx", sql.SQL("({})").format(sql.Identifier(col.name))))
    return indexes


def _index_and_swap(
    cur: psycopg.Cursor, ident: dict, name: str, indexes: list[tuple[str, sql.Composable]], clustered: bool
) -> None:
    """Index the staging table, then put it in the old table's place under the final names."""
    for idx_name, expr in indexes:
        cur.execute(
            sql.SQL("CREATE INDEX {} ON {schema}.{staging} {}").format(
                sql.Identifier("_" + idx_name[:62]), expr, **ident
            )
        )
    cur.execute(sql.SQL("DROP TABLE IF EXISTS {schema}.{name}").format(**ident))
    cur.execute(sql.SQL("ALTER TABLE {schema}.{staging} RENAME TO {name}").format(**ident))
    for idx_name, _ in indexes:
        cur.execute(
            sql.SQL("ALTER INDEX {schema}.{} RENAME TO {}").format(
                sql.Identifier("_" + idx_name[:62]), sql.Identifier(idx_name[:63]), **ident
            )
        )
    if clustered:
        cur.execute(
            sql.SQL("ALTER TABLE {schema}.{name} CLUSTER ON {}").format(sql.Identifier(f"{name}_q3c_idx"[:63]), **ident)
        )
    cur.execute(sql.SQL("ALTER TABLE {schema}.{name} OWNER TO starbox_owner").format(**ident))
    cur.execute(sql.SQL("GRANT SELECT ON {schema}.{name} TO starbox_public").format(**ident))
    cur.execute(sql.SQL("ANALYZE {schema}.{name}").format(**ident))


def copy_error(exc: psycopg.Error, path: Path, line_is: str) -> StarboxError:
    """PostgreSQL names the COPY line and column; say it in the file's terms (line or row)."""
    diag = exc.diag
    # context looks like: COPY _load, line 12, column hip: "abc"
    found = re.search(r"line (\d+)(, column (\w+))?", diag.context or "")
    where = ""
    if found:
        where = f"{line_is} {found.group(1)}" + (f", column {found.group(3)}" if found.group(3) else "")
    return StarboxError(f"{path}: {where}: {diag.message_primary}" if where else f"{path}: {diag.message_primary}")


def drop(conn: psycopg.Connection, table: str) -> None:
    """Drop a catalog table and forget it in tbl_stat and TAP_SCHEMA, in one transaction."""
    schema, name = split_table(table)
    if not table_exists(conn, schema, name):
        raise StarboxError(f"{table} does not exist")
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(schema), sql.Identifier(name)))
        registry.unregister(cur, schema, name)
        left = database.scalar(cur, "SELECT count(*) FROM starbox_lookup.relations WHERE schema_name = %s", (schema,))
        if not left:
            cur.execute(sql.SQL("DROP SCHEMA {}").format(sql.Identifier(schema)))
