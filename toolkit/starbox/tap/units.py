"""ADQL 2.1's IN_UNIT(value, unit): the value, a catalog column, converted to another unit.

The column's unit is the one TAP_SCHEMA lists for it, from the catalog's manifest; the factor
comes from astropy.units, which reads VOUnit strings. MyDB tables carry no units, so IN_UNIT
of their columns is refused with the reason."""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import astropy.units as u

from starbox import settings as settings_mod
from starbox.catalogs.manifest import catalog_manifests
from starbox.errors import StarboxError


@lru_cache(maxsize=4)
def _catalog_units(db_dir: Path) -> dict[str, dict[str, str]]:
    """schema.table -> column -> unit, for every catalog column with a unit."""
    return {m.table.lower(): {c.name.lower(): c.unit for c in m.columns if c.unit} for m in catalog_manifests(db_dir)}


def catalog_units() -> dict[str, dict[str, str]]:
    return _catalog_units(settings_mod.get().db_dir)


def parse(text: str) -> u.UnitBase:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", u.UnitsWarning)  # deprecated VOUnit names still convert
        try:
            return u.Unit(text, format="vounit")
        except ValueError:
            try:
                return u.Unit(text)
            except ValueError:
                raise StarboxError(f"Error: IN_UNIT: {text!r} is not a unit") from None


def column_unit(column: list[str], tables: dict[str, str]) -> str:
    """The unit of a column reference (`col`, `alias.col` or `schema.table.col`); `tables` maps
    the query's table names and aliases to schema.table."""
    units = catalog_units()
    name = column[-1]
    if len(column) == 3:
        candidates = [f"{column[0]}.{column[1]}"]
    elif len(column) == 2:
        candidates = [tables.get(column[0], column[0])]
    else:
        candidates = sorted(set(tables.values()))
    found = {units[t][name] for t in candidates if name in units.get(t, {})}
    shown = ".".join(column)
    if not found:
        raise StarboxError(
            f"Error: IN_UNIT: the unit of {shown} is not known (IN_UNIT takes a catalog column with a unit)"
        )
    if len(found) > 1:
        raise StarboxError(f"Error: IN_UNIT: {shown} is ambiguous ({', '.join(sorted(found))}): qualify it")
    return found.pop()


def factor(source: str, target: str) -> float:
    """What a value in `source` units is multiplied by to be in `target` units."""
    try:
        return float(parse(source).to(parse(target)))
    except u.UnitConversionError:
        raise StarboxError(f"Error: IN_UNIT: {source} cannot be converted to {target}") from None
