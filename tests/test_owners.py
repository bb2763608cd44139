"""One owner for each table and each secret (issue 12, item 2): a reader who greps a table name
finds one module, and every secret file is named in keys.py alone."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import house_metrics
from conftest import run_cli

TOOLKIT = Path(__file__).resolve().parents[1] / "toolkit" / "starbox"

OWNERS = {
    "starbox.accounts": "starbox.accounts",
    "starbox.tokens": "starbox.accounts",
    "starbox.jobs": "starbox.jobs",
    "public.tbl_stat": "starbox.catalogs.registry",
    "tap_schema.published_schemas": "starbox.catalogs.registry",
    "tap_schema.schemas": "starbox.catalogs.registry",  # the views of published rows + the caller's MyDB
    "tap_schema.tables": "starbox.catalogs.registry",
    "tap_schema.columns": "starbox.catalogs.registry",
    "tap_schema.votable_type": "starbox.catalogs.registry",  # the one PostgreSQL -> VOTable type mapping
    "tap_schema.published_tables": "starbox.catalogs.registry",
    "tap_schema.published_columns": "starbox.catalogs.registry",
    "tap_schema.keys": "starbox.catalogs.registry",
    "tap_schema.key_columns": "starbox.catalogs.registry",
}


@pytest.mark.unit
def test_each_table_has_one_module_that_writes_its_sql():
    writers = house_metrics.report(TOOLKIT)["table_writers"]
    assert set(writers) <= set(OWNERS), f"a table with no owner named here: {set(writers) - set(OWNERS)}"
    for table, modules in writers.items():
        assert modules == [OWNERS[table]], f"{table} is written by {modules}, not only by {OWNERS[table]}"


@pytest.mark.unit
def test_catalog_lookups_use_the_views_not_pg_class_joins():
    joined = [p.relative_to(TOOLKIT) for p in TOOLKIT.rglob("*.py")
              if re.search(r"pg_class\b.*\bJOIN\s+pg_namespace|pg_namespace\b.*\bJOIN\s+pg_class", p.read_text())]
    assert joined == [], f"pg_class ⋈ pg_namespace written out in {joined}: use starbox_lookup (db/009_lookups.sql)"


@pytest.mark.unit
def test_secret_files_are_named_only_in_keys():
    names = re.compile(r"""["'](?:service\.password|signing\.key|roles\.key|postgres\.password|webhook\.secret)["']"""
                       r"""|\.(?:token|password)["']""")
    named = sorted(str(p.relative_to(TOOLKIT)) for p in TOOLKIT.rglob("*.py")
                   if p.name != "keys.py" and names.search(p.read_text()))
    assert named == [], f"secret files named outside keys.py: {named}"


@pytest.mark.unit
def test_no_import_cycles_in_the_toolkit():
    report = house_metrics.report(TOOLKIT)
    assert report["cycles_top_level"] == []
    assert report["cycles_with_lazy_imports"] == [], "a function-level import that only hides a cycle"


@pytest.mark.system
def test_catalog_info_reads_the_registry(starbox):
    r = run_cli(starbox, "catalog", "info", "hipparcos.main")
    assert r.returncode == 0, r.stderr
    assert "hipparcos.main" in r.stdout and " rows, " in r.stdout and "index: CREATE INDEX" in r.stdout
    assert "pos.eq.ra;meta.main" in r.stdout
    r = run_cli(starbox, "catalog", "info", "hipparcos.nosuch")
    assert r.returncode != 0 and "is not a catalog table" in (r.stdout + r.stderr)


@pytest.mark.api
def test_lookup_views_answer_for_a_user_and_anonymously(api):
    token = api.add_user("owner_views")
    with api.client(token) as c:
        assert c.get("/query/query", params={"sql": "CREATE TABLE mine (x int)", "fmt": "csv"}).status_code == 200
        r = c.get("/query/list", params={})
        assert r.status_code == 200 and r.text.startswith("mine,created:"), r.text
        r = c.get("/query/query", params={"sql": "SELECT name FROM starbox_lookup.relations"
                                                  " WHERE schema_name = 'mydb_owner_views'", "fmt": "csv"})
        assert r.status_code == 200 and r.text.split() == ["name", "mine"], r.text
