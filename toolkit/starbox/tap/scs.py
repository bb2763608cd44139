"""Simple Cone Search 1.03 at /scs/<schema>/<table>, for every TAP_SCHEMA table with a position.

A cone is an ADQL query run through the TAP machinery (same indexes, MAXREC overflow, units and
UCDs), with the three columns SCS 1.03 requires marked with its UCD1 names.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

from starbox.accounts import User
from starbox.catalogs import registry
from starbox.errors import NotFound, StarboxError
from starbox.tap import metadata, query, votable
from starbox.tap.params import Params

MAX_SR = 10.0  # degrees: larger cones belong in TAP, where MAXREC and async jobs help
SCS_UCDS = {"id": "ID_MAIN", "ra": "POS_EQ_RA_MAIN", "dec": "POS_EQ_DEC_MAIN"}


def error_document(message: str) -> bytes:
    """SCS 1.03 section 3: an INFO named Error; DALI's QUERY_STATUS too, for newer clients."""
    doc = votable.error_document(message).decode()
    return doc.replace(
        "<RESOURCE ", f'<INFO ID="Error" name="Error" value={quoteattr(message)}/>\n<RESOURCE ', 1
    ).encode()


def _number(p: Params, name: str, low: float, high: float) -> float:
    raw = p.get(name)
    if raw is None or not raw.strip():
        raise StarboxError(f"Error: the {name} parameter is missing (a cone search needs RA, DEC and SR in degrees)")
    try:
        value = float(raw)
    except ValueError:
        raise StarboxError(f"Error: {name} must be a number of degrees, not {raw!r}") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise StarboxError(f"Error: {name}={raw} is out of range [{low:g}, {high:g}]")
    return value


def find_table(pools, schema: str, table: str) -> dict:
    name = f"{schema}.{table}".lower()
    for t in metadata.positional_tables(pools):
        if t["table"].lower() == name:
            return t
    raise NotFound(
        f"Error: no cone search for {schema}.{table}: not a published table with a position (see /scs for the list)"
    )


def _columns(pools, t: dict, verb: int) -> list[str]:
    with pools.metadata() as conn:
        rows = registry.principal_columns(conn, t["table"])
    key = [c for c in (t["id"], t["ra"], t["dec"]) if c]
    if verb <= 1:
        return key
    picked = [c for c, principal in rows if verb >= 3 or principal]
    return key + [c for c in picked if c not in key]


def cone(pools, settings, user: User, schema: str, table: str, p: Params):
    """(media type, chunks) of the cone's VOTable; refusals raise StarboxError."""
    t = find_table(pools, schema, table)
    ra = _number(p, "RA", 0.0, 360.0)
    dec = _number(p, "DEC", -90.0, 90.0)
    sr = _number(p, "SR", 0.0, MAX_SR)
    verb_raw = p.get("VERB") or "2"
    if verb_raw.strip() not in ("1", "2", "3"):
        raise StarboxError(f"Error: VERB must be 1, 2 or 3, not {verb_raw!r}")
    cols = _columns(pools, t, int(verb_raw))
    adql = (
        f"SELECT {', '.join(_quote(c) for c in cols)} FROM {t['table']} "
        f"WHERE 1 = CONTAINS(POINT('ICRS', {_quote(t['ra'])}, {_quote(t['dec'])}), "
        f"CIRCLE('ICRS', {ra!r}, {dec!r}, {sr!r}))"
    )
    q = query.TapQuery(adql, query.VOTABLE, settings.tap_maxrec)
    ucds = {t["ra"]: SCS_UCDS["ra"], t["dec"]: SCS_UCDS["dec"]}
    if t["id"]:
        ucds[t["id"]] = SCS_UCDS["id"]
    fmt, chunks, _ = query.stream(pools, user, q, settings.sync_timeout(user.anonymous), settings.row_cap, ucds=ucds)
    return fmt.media_type, chunks


def _quote(name: str) -> str:
    return name if name.isidentifier() and name.islower() else '"' + name.replace('"', '""') + '"'


def index(pools, base: str) -> str:
    lines = ["Simple Cone Search 1.03 services (RA, DEC, SR in degrees; VERB=1, 2 or 3):", ""]
    for t in metadata.positional_tables(pools):
        schema, table = t["table"].split(".", 1)
        lines.append(f"  {base}/{schema}/{table}?RA=..&DEC=..&SR=..   {t['description'] or ''}".rstrip())
    return "\n".join(lines) + "\n"
