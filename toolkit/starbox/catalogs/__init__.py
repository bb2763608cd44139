"""The sample catalogs: builders that turn registry packages into files, and the loader."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import psycopg

from starbox.catalogs import loader
from starbox.catalogs.manifest import Manifest, catalog_manifests, split_table
from starbox.errors import StarboxError
from starbox.settings import Settings

# Builder name in a manifest -> module under starbox.catalogs with build(outdir) -> {table: path}.
BUILDERS = {"hipparcos": "hipparcos", "gaia": "gaia", "openngc": "openngc", "smash": "smash"}
# The setting `sample_catalogs` names schemas; this maps them to builders.
SCHEMA_BUILDERS = {"hipparcos": "hipparcos", "gaia_dr3": "gaia", "openngc": "openngc", "smash_sim": "smash"}


@dataclass
class Built:
    table: str
    rows: int
    seconds: float


def selected_manifests(settings: Settings) -> list[Manifest]:
    wanted = {s.strip() for s in settings.sample_catalogs.split(",") if s.strip()}
    unknown = wanted - set(SCHEMA_BUILDERS)
    if unknown:
        raise StarboxError(
            f"unknown sample catalog(s) {', '.join(sorted(unknown))}; choose from {', '.join(SCHEMA_BUILDERS)}"
        )
    return [m for m in catalog_manifests(settings.db_dir) if m.schema in wanted]


def missing_tables(conn: psycopg.Connection, manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if not loader.table_exists(conn, *split_table(m.table))]


def build(
    conn: psycopg.Connection,
    settings: Settings,
    *,
    only: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
    log=print,
) -> list[Built]:
    """Build the sample catalogs that are missing (or all of them with force)."""
    manifests = selected_manifests(settings)
    if only:
        manifests = [m for m in manifests if m.table in only or m.schema in only]
        if not manifests:
            raise StarboxError(f"no sample catalog matches {', '.join(only)}")
    todo = manifests if force else missing_tables(conn, manifests)
    done: list[Built] = []
    for builder in dict.fromkeys(m.builder for m in todo):
        if builder not in BUILDERS:
            raise StarboxError(f"unknown builder {builder!r} in db/catalogs")
        module = importlib.import_module(f"starbox.catalogs.{BUILDERS[builder]}")
        log(f"building {builder} ...")
        files = module.build(settings.build_dir / builder)
        for manifest in (m for m in todo if m.builder == builder):
            result = loader.load(
                conn, files[manifest.table], manifest.table, manifest=manifest, replace=True, progress=progress
            )
            log(f"  {manifest.table}: {result.rows:,} rows in {result.seconds:.1f} s")
            done.append(Built(manifest.table, result.rows, result.seconds))
    return done
