"""Catalog manifests (db/catalogs/*.yaml): columns, units, UCDs and descriptions of a table.

One manifest feeds both the loader (column types, position columns, indexes) and TAP_SCHEMA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from starbox.errors import StarboxError

IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def split_table(name: str) -> tuple[str, str]:
    """'schema.table' -> (schema, table), refusing anything that is not two plain identifiers."""
    parts = name.split(".")
    if len(parts) != 2 or not all(IDENT.match(p) for p in parts):
        raise StarboxError(
            f"invalid table name {name!r}: use schema.table in lower-case letters, digits and underscores"
        )
    if parts[0] in (
        "pg_catalog",
        "information_schema",
        "public",
        "tap_schema",
        "starbox_meta",
        "starbox",
        "starbox_lookup",
        "ivoa",
    ):
        raise StarboxError(f"invalid table name {name!r}: schema {parts[0]!r} is reserved")
    return parts[0], parts[1]


@dataclass
class Column:
    name: str
    type: str | None = None
    unit: str | None = None
    ucd: str | None = None
    description: str | None = None
    principal: bool | None = None


@dataclass
class Manifest:
    table: str
    title: str = ""
    description: str = ""
    schema_description: str = ""
    builder: str | None = None
    license: str | None = None
    ra: str | None = None
    dec: str | None = None
    pgsphere: bool = False
    columns: list[Column] = field(default_factory=list)
    path: Path | None = None

    @property
    def schema(self) -> str:
        return split_table(self.table)[0]

    @property
    def name(self) -> str:
        return split_table(self.table)[1]

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


def read(path: Path) -> Manifest:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise StarboxError(f"cannot read manifest {path}: {exc}") from None
    if not isinstance(raw, dict) or "table" not in raw:
        raise StarboxError(f"manifest {path} must be a mapping with at least 'table:'")
    known = set(Manifest.__dataclass_fields__) - {"path", "columns"}
    unknown = set(raw) - known - {"columns"}
    if unknown:
        raise StarboxError(f"manifest {path}: unknown key(s) {', '.join(sorted(unknown))}")
    columns = []
    for i, col in enumerate(raw.get("columns") or [], 1):
        if not isinstance(col, dict) or "name" not in col:
            raise StarboxError(f"manifest {path}: column #{i} needs at least a name")
        extra = set(col) - set(Column.__dataclass_fields__)
        if extra:
            raise StarboxError(f"manifest {path}: column {col['name']!r} has unknown key(s) {', '.join(sorted(extra))}")
        fields: dict[str, Any] = {k: (str(v) if k != "principal" and v is not None else v) for k, v in col.items()}
        columns.append(Column(**fields))
    manifest = Manifest(**{k: v for k, v in raw.items() if k != "columns"}, columns=columns, path=path)
    split_table(manifest.table)
    return manifest


def catalog_manifests(db_dir: Path) -> list[Manifest]:
    """The sample catalogs' manifests, in file-name order."""
    return [read(p) for p in sorted((db_dir / "catalogs").glob("*.yaml"))]
