"""Data Lab's metadata texts: schema listings in its fixed-width layout, profiles and services."""

from __future__ import annotations

import json
import textwrap

import psycopg

from starbox.catalogs import registry
from starbox.errors import NotFound
from starbox.settings import Settings

WIDTH = 58  # description pieces per line, as in Data Lab's saved outputs


def _rows(heading: str, rule: str, items: list[tuple[str, str]]) -> str:
    lines = [f"{heading:>16}   Description", f"{rule:>16}   -----------"]
    for name, desc in items:
        pieces = textwrap.wrap(desc or "", WIDTH, break_long_words=True) or [""]
        lines.append(f"{name:>16}   {pieces[0]}")
        lines.extend(" " * 19 + p for p in pieces[1:])
    return "\n".join(lines) + "\n"


def schema_text(conn: psycopg.Connection, value: str = "") -> str:
    """`/query/schema`: all schemas, one schema's tables, or one table's columns."""
    value = (value or "").strip()
    if not value:
        items = registry.schema_rows(conn)
        return "\n" + _rows("Schema Name", "-----------", items)
    schema, _, table = value.partition(".")
    if not table:
        items = registry.schema_tables(conn, schema)
        if not items:
            raise NotFound(f"Error: no schema {schema!r}")
        return f"\nSchema: {schema}\n\n" + _rows("Table Name", "----------", items)
    items = registry.column_descriptions(conn, value)
    if not items:
        raise NotFound(f"Error: no table {value!r}")
    return f"\nSchema: {schema}\n Table: {table}\n\n" + _rows("Column Name", "-----------", items)


def profiles(settings: Settings, profile: str | None, service: str) -> str:
    """`/query/profiles` and `/storage/profiles`: one profile, 'default', this appliance."""
    description = {
        "query": "Starbox local database (PostgreSQL with q3c and pgsphere)",
        "storage": "Starbox local storage",
    }[service]
    if profile:
        if profile != "default":
            raise NotFound(f"Error: no profile {profile!r}; this service has only 'default'")
        return json.dumps(
            {
                "name": "default",
                "description": description,
                "type": "public",
                "accessURL": f"{settings.service_url}/{service}",
                "database": settings.db_name,
            }
        )
    return f"{'default':>16}   {description}\n"


def services(settings: Settings, name: str | None = None, svc_type: str | None = None, mode: str = "list") -> str:
    """`/query/services`: the data services this appliance offers."""
    base = settings.service_url
    known = [
        ("starbox_tap", "tap", "Starbox TAP service (ADQL over every catalog)", f"{base}/tap"),
        ("starbox_vos", "vos", "Starbox user storage", f"{base}/storage"),
    ]
    picked = [
        s for s in known if (not svc_type or s[1] == svc_type.lower()) and (not name or name.replace("%", "") in s[0])
    ]
    if mode == "resolve":
        return json.dumps({s[0]: s[3] for s in picked})
    lines = ["", f"{'name':>24}   svc   description", f"{'--------':>24}   ----  --------"]
    lines += [f"{s[0]:>24}   {s[1]:<4}  {s[2]}" for s in picked]
    return "\n".join(lines) + "\n"
