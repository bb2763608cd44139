"""Keeping tbl_stat and TAP_SCHEMA in step with the catalog tables.

The loader's rows live in tap_schema.published_{schemas,tables,columns}; tap_schema.schemas,
.tables and .columns are views of them plus the caller's own MyDB (db/010_tap_schema_mydb.sql),
so reads go through the views and writes to the published tables."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg


@dataclass
class ColumnMeta:
    name: str
    pg_type: str
    unit: str | None = None
    ucd: str | None = None
    description: str | None = None
    principal: bool = False
    indexed: bool = False


def refresh_tbl_stat(cur: psycopg.Cursor, schema: str, table: str, nrows: int) -> None:
    """Upsert the table's row in Data Lab's tbl_stat (sizes as Data Lab prints them, e.g. '22 GB')."""
    cur.execute(
        """
        INSERT INTO public.tbl_stat AS s
        SELECT %(schema)s, %(table)s, %(nrows)s,
               (SELECT count(*) FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0 AND NOT attisdropped),
               (SELECT count(*) FROM pg_index WHERE indrelid = c.oid),
               pg_size_pretty(pg_table_size(c.oid)), pg_size_pretty(pg_indexes_size(c.oid)),
               pg_size_pretty(pg_total_relation_size(c.oid))
        FROM pg_class c WHERE c.oid = format('%%I.%%I', %(schema)s::text, %(table)s::text)::regclass
        ON CONFLICT (schema, tbl_name) DO UPDATE SET nrows = excluded.nrows, ncols = excluded.ncols,
            nindex = excluded.nindex, table_size = excluded.table_size,
            indexes_size = excluded.indexes_size, total_size = excluded.total_size
        """,
        {"schema": schema, "table": table, "nrows": nrows},
    )


def register(
    cur: psycopg.Cursor, schema: str, table: str, description: str, schema_description: str, columns: list[ColumnMeta]
) -> None:
    """Describe a table and its columns in TAP_SCHEMA, replacing any earlier description."""
    full = f"{schema}.{table}"
    cur.execute(
        "INSERT INTO tap_schema.published_schemas (schema_name, description, schema_index)"
        " VALUES (%s, %s, (SELECT coalesce(max(schema_index), 0) + 1 FROM tap_schema.published_schemas"
        " WHERE schema_index < 100000))"
        " ON CONFLICT (schema_name) DO UPDATE SET description = coalesce(nullif(excluded.description, ''),"
        " tap_schema.published_schemas.description)",
        (schema, schema_description or None),
    )
    cur.execute("DELETE FROM tap_schema.published_tables WHERE table_name = %s", (full,))
    cur.execute(
        "INSERT INTO tap_schema.published_tables (schema_name, table_name, table_type, description, table_index)"
        " VALUES (%s, %s, 'table', %s, (SELECT coalesce(max(table_index), 0) + 1 FROM tap_schema.published_tables))",
        (schema, full, description or None),
    )
    rows = [
        (full, col.name, col.ucd, col.unit, col.description, int(col.principal), int(col.indexed), i, col.pg_type)
        for i, col in enumerate(columns, 1)
    ]
    cur.executemany(  # the VOTable type from the database's one mapping (tap_schema.votable_type)
        "INSERT INTO tap_schema.published_columns (table_name, column_name, ucd, unit, description, datatype,"
        " arraysize, xtype, principal, indexed, std, column_index)"
        " SELECT %s, %s, %s, %s, %s, v.datatype, v.arraysize, v.xtype, %s, %s, 0, %s"
        " FROM tap_schema.votable_type(%s::regtype) v",
        rows,
    )


def unregister(cur: psycopg.Cursor, schema: str, table: str) -> None:
    """Forget a dropped table in tbl_stat and TAP_SCHEMA (and its schema once it is empty)."""
    cur.execute("DELETE FROM public.tbl_stat WHERE schema = %s AND tbl_name = %s", (schema, table))
    cur.execute("DELETE FROM tap_schema.published_tables WHERE table_name = %s", (f"{schema}.{table}",))
    cur.execute(
        "DELETE FROM tap_schema.published_schemas s WHERE schema_name = %s"
        " AND NOT EXISTS (SELECT 1 FROM tap_schema.published_tables t WHERE t.schema_name = s.schema_name)",
        (schema,),
    )


# --- reading: the rest of Starbox asks these instead of writing SQL against tbl_stat and TAP_SCHEMA ---


def column_origins(conn) -> list[tuple]:
    """(table OID, column number, unit, ucd, utype, xtype, description) of every registered column:
    how a result column's PostgreSQL origin finds its TAP metadata."""
    return conn.execute(
        "SELECT a.attrelid::bigint, a.attnum, tc.unit, tc.ucd, tc.utype, tc.xtype, tc.description"
        " FROM tap_schema.columns tc"
        " JOIN pg_attribute a ON a.attrelid = to_regclass(tc.table_name)"
        " AND a.attname = trim(both '\"' FROM tc.column_name)"
    ).fetchall()


def tap_schema_rows(conn, table: str | None = None) -> tuple[list, list, list]:
    """TAP_SCHEMA's (tables, columns, keys) rows, of one table or all, in their published order."""
    where, args = ("WHERE t.table_name = %s", (table,)) if table else ("", ())
    tables = conn.execute(
        "SELECT s.schema_name, s.description, s.utype, t.table_name, t.table_type, t.description, t.utype"
        " FROM tap_schema.tables t JOIN tap_schema.schemas s USING (schema_name) "
        + where
        + " ORDER BY s.schema_index NULLS LAST, s.schema_name, t.table_index NULLS LAST, t.table_name",
        args,
    ).fetchall()
    cols = conn.execute(
        "SELECT table_name, column_name, description, unit, ucd, utype, datatype, arraysize, xtype,"
        " principal, indexed, std FROM tap_schema.columns"
        + (" WHERE table_name = %s" if table else "")
        + " ORDER BY table_name, column_index NULLS LAST, column_name",
        args,
    ).fetchall()
    keys = conn.execute(
        "SELECT k.key_id, k.from_table, k.target_table, k.description, k.utype, kc.from_column, kc.target_column"
        " FROM tap_schema.keys k JOIN tap_schema.key_columns kc USING (key_id)"
        + (" WHERE k.from_table = %s" if table else "")
        + " ORDER BY k.key_id",
        args,
    ).fetchall()
    return tables, cols, keys


def tap_table_name(conn, name: str) -> str | None:
    """The registered spelling of a table name given in any case (ADQL names are case-insensitive)."""
    row = conn.execute(
        "SELECT table_name FROM tap_schema.tables WHERE lower(table_name) = lower(%s)", (name,)
    ).fetchone()
    return row[0] if row else None


def tap_table_names(conn) -> set[str]:
    """Every registered table, lower-case."""
    return {r[0] for r in conn.execute("SELECT lower(table_name) FROM tap_schema.tables")}


def positional_rows(conn) -> list[tuple]:
    """(table, description, ra, dec, id) of each catalog table, by the columns' main UCDs."""
    return conn.execute(
        "SELECT t.table_name, t.description,"
        " max(c.column_name) FILTER (WHERE c.ucd ILIKE 'pos.eq.ra;meta.main'),"
        " max(c.column_name) FILTER (WHERE c.ucd ILIKE 'pos.eq.dec;meta.main'),"
        " max(c.column_name) FILTER (WHERE c.ucd ILIKE 'meta.id;meta.main')"
        " FROM tap_schema.tables t JOIN tap_schema.columns c USING (table_name)"
        " WHERE t.schema_name <> 'tap_schema' GROUP BY t.table_name, t.description ORDER BY 1"
    ).fetchall()


def principal_columns(conn, table: str) -> list[tuple[str, bool]]:
    """(column, principal) of a table, in column order."""
    return conn.execute(
        "SELECT column_name, principal FROM tap_schema.columns WHERE table_name = %s"
        " ORDER BY column_index NULLS LAST, column_name",
        (table,),
    ).fetchall()


def schema_rows(conn) -> list[tuple[str, str]]:
    """(schema, description) of every registered schema, by name."""
    return conn.execute(
        "SELECT schema_name, coalesce(description, '') FROM tap_schema.schemas ORDER BY schema_name"
    ).fetchall()


def schema_tables(conn, schema: str) -> list[tuple[str, str]]:
    """(table without schema, description) of a schema's tables."""
    return conn.execute(
        "SELECT split_part(table_name, '.', 2), coalesce(description, '') FROM tap_schema.tables"
        " WHERE schema_name = %s ORDER BY table_index, table_name",
        (schema,),
    ).fetchall()


def column_descriptions(conn, table: str) -> list[tuple[str, str]]:
    """(column, description) of a schema.table, in column order."""
    return conn.execute(
        "SELECT column_name, coalesce(description, '') FROM tap_schema.columns"
        " WHERE table_name = %s ORDER BY column_index",
        (table,),
    ).fetchall()


@dataclass
class Described:
    description: str | None
    nrows: int
    ncols: int
    nindex: int
    total_size: str
    columns: list[tuple]  # (name, datatype, unit, ucd, description)
    indexes: list[str]  # CREATE INDEX statements


def describe(conn, schema: str, table: str) -> Described | None:
    """What `starbox catalog describe` shows of a catalog table; None if it is not one."""
    full = f"{schema}.{table}"
    desc = conn.execute("SELECT description FROM tap_schema.tables WHERE table_name = %s", (full,)).fetchone()
    stat = conn.execute(
        "SELECT nrows, ncols, nindex, total_size FROM public.tbl_stat WHERE schema = %s AND tbl_name = %s",
        (schema, table),
    ).fetchone()
    if desc is None or stat is None:
        return None
    cols = conn.execute(
        "SELECT column_name, datatype, unit, ucd, description FROM tap_schema.columns"
        " WHERE table_name = %s ORDER BY column_index",
        (full,),
    ).fetchall()
    idx = [
        r[0]
        for r in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (schema, table)
        )
    ]
    nrows, ncols, nindex, total_size = stat
    return Described(desc[0], nrows, ncols, nindex, total_size, columns=cols, indexes=idx)


def sizes(conn) -> list[tuple[str, int, str]]:
    """(schema.table, rows, total size) of every catalog table."""
    return conn.execute(
        "SELECT schema || '.' || tbl_name, nrows, total_size FROM public.tbl_stat ORDER BY 1"
    ).fetchall()


def dataset_rows(conn) -> list[tuple[str, str]]:
    """(schema, table) of everything users can query: tbl_stat's tables and TAP_SCHEMA's."""
    return conn.execute(
        "SELECT schema, tbl_name FROM public.tbl_stat UNION "
        "SELECT schema_name, split_part(table_name, '.', 2) FROM tap_schema.tables "
        "WHERE schema_name <> 'tap_schema'"
    ).fetchall()
