"""Keeping tbl_stat and TAP_SCHEMA in step with the catalog tables."""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

# VOTable datatypes (TAP 1.1 TAP_SCHEMA.columns.datatype) for PostgreSQL column types.
VOTABLE_TYPES = {
    "smallint": ("short", None, None),
    "integer": ("int", None, None),
    "bigint": ("long", None, None),
    "real": ("float", None, None),
    "double precision": ("double", None, None),
    "boolean": ("boolean", None, None),
    "text": ("char", "*", None),
    "numeric": ("double", None, None),
    "date": ("char", "*", "timestamp"),
    "timestamp": ("char", "*", "timestamp"),
}


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


def register(cur: psycopg.Cursor, schema: str, table: str, description: str, schema_description: str,
             columns: list[ColumnMeta]) -> None:
    """Describe a table and its columns in TAP_SCHEMA, replacing any earlier description."""
    full = f"{schema}.{table}"
    cur.execute(
        "INSERT INTO tap_schema.schemas (schema_name, description, schema_index)"
        " VALUES (%s, %s, (SELECT coalesce(max(schema_index), 0) + 1 FROM tap_schema.schemas WHERE schema_index < 100000))"
        " ON CONFLICT (schema_name) DO UPDATE SET description = coalesce(nullif(excluded.description, ''),"
        " tap_schema.schemas.description)",
        (schema, schema_description or None),
    )
    cur.execute("DELETE FROM tap_schema.tables WHERE table_name = %s", (full,))
    cur.execute(
        "INSERT INTO tap_schema.tables (schema_name, table_name, table_type, description, table_index)"
        " VALUES (%s, %s, 'table', %s, (SELECT coalesce(max(table_index), 0) + 1 FROM tap_schema.tables))",
        (schema, full, description or None),
    )
    rows = []
    for i, col in enumerate(columns, 1):
        datatype, arraysize, xtype = VOTABLE_TYPES.get(col.pg_type, ("char", "*", None))
        rows.append((full, col.name, col.ucd, col.unit, col.description, datatype, arraysize, xtype,
                     int(col.principal), int(col.indexed), i))
    cur.executemany(
        "INSERT INTO tap_schema.columns (table_name, column_name, ucd, unit, description, datatype,"
        " arraysize, xtype, principal, indexed, std, column_index)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s)",
        rows,
    )


def unregister(cur: psycopg.Cursor, schema: str, table: str) -> None:
    """Forget a dropped table in tbl_stat and TAP_SCHEMA (and its schema once it is empty)."""
    cur.execute("DELETE FROM public.tbl_stat WHERE schema = %s AND tbl_name = %s", (schema, table))
    cur.execute("DELETE FROM tap_schema.tables WHERE table_name = %s", (f"{schema}.{table}",))
    cur.execute(
        "DELETE FROM tap_schema.schemas s WHERE schema_name = %s"
        " AND NOT EXISTS (SELECT 1 FROM tap_schema.tables t WHERE t.schema_name = s.schema_name)",
        (schema,),
    )
