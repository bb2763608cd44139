"""DALI 1.1 examples (/tap/examples): the queries the lessons use, as XHTML with RDFa.

Only examples whose tables are loaded are listed (the simulated SMASH field is optional), so
every example runs as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from starbox.catalogs import registry


@dataclass(frozen=True)
class Example:
    id: str
    name: str
    tables: tuple[str, ...]
    query: str
    text: str


EXAMPLES = [
    Example(
        "hipparcos-cone",
        "Stars around the Pleiades in Hipparcos",
        ("hipparcos.main",),
        "SELECT hip, ra, dec, plx, hpmag, b_v\nFROM hipparcos.main\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 56.75, 24.12, 2))\nORDER BY hpmag",
        "A cone search: every Hipparcos star within 2 degrees of the Pleiades, brightest first. "
        "The cone runs on the pgsphere index of the table.",
    ),
    Example(
        "smash-cone",
        "Objects around Hydra II in the simulated SMASH field",
        ("smash_sim.object",),
        "SELECT id, ra, dec, gmag, rmag, imag\nFROM smash_sim.object\n"
        "WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 185.4286, -31.9728, 0.05))",
        "A small cone (3 arcminutes) on the dwarf galaxy Hydra II in smash_sim.object, a simulation "
        "of SMASH field 169 with SMASH DR1's column names.",
    ),
    Example(
        "hydra-ii",
        "Blue point sources of SMASH field 169 (the Hydra II search)",
        ("smash_sim.object",),
        "SELECT ra, dec, gmag, rmag, imag\nFROM smash_sim.object\n"
        "WHERE fieldid = '169' AND depthflag > 1 AND ndetr > 3 AND ndetg > 3\n"
        "  AND ABS(sharp) < 0.5 AND gmag BETWEEN 9 AND 25\n  AND gmag - rmag BETWEEN -0.4 AND 0.4",
        "The query of Data Lab's notebook 'Detecting the Hydra II dwarf galaxy in SMASH DR1', on the "
        "simulated field: point-like (|sharp| < 0.5), well-detected, blue objects.",
    ),
    Example(
        "gaia-hipparcos-xmatch",
        "Cross-match of Hipparcos and Gaia DR3 (bright stars)",
        ("hipparcos.main", "gaia_dr3.gaia_source_bright"),
        "SELECT TOP 1000 h.hip, g.source_id, h.hpmag, g.phot_g_mean_mag,\n"
        "  DISTANCE(POINT('ICRS', h.ra, h.dec), POINT('ICRS', g.ra, g.dec)) * 3600 AS sep_arcsec\n"
        "FROM hipparcos.main AS h\nJOIN gaia_dr3.gaia_source_bright AS g\n"
        "  ON 1 = CONTAINS(POINT('ICRS', g.ra, g.dec), CIRCLE('ICRS', h.ra, h.dec, 1.0 / 3600))",
        "Each Hipparcos star with the Gaia sources within 1 arcsecond; the join runs on q3c. "
        "Stars with a large proper motion need a wider radius (epochs J1991.25 and J2016.0).",
    ),
    Example(
        "openngc-messier",
        "Messier galaxies in OpenNGC",
        ("openngc.objects",),
        "SELECT name, messier, type_desc, ra, dec\nFROM openngc.objects\n"
        "WHERE messier IS NOT NULL AND type_desc LIKE '%alaxy%'\nORDER BY messier",
        "The galaxies of Messier's catalogue (ADQL 2.1's ILIKE or LOWER would make the match case-insensitive).",
    ),
]


def loaded(pools) -> list[Example]:
    with pools.metadata() as conn:
        tables = registry.tap_table_names(conn)
    return [e for e in EXAMPLES if all(t in tables for t in e.tables)]


def document(pools, base: str) -> bytes:
    parts = []
    for e in loaded(pools):
        tables = "".join(f'<li><span property="table">{escape(t)}</span></li>' for t in e.tables)
        parts.append(
            f'<div typeof="example" id="{e.id}" resource="#{e.id}">\n'
            f'<h2 property="name">{escape(e.name)}</h2>\n'
            f"<p>{escape(e.text)}</p>\n"
            f'<pre class="dachs-ex-tapquery" property="query">{escape(e.query)}</pre>\n'
            f"<p>Tables:</p><ul>{tables}</ul>\n</div>\n"
        )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!DOCTYPE html>\n"
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">\n'
        '<head><meta charset="utf-8"/><title>Starbox TAP examples</title></head>\n'
        '<body vocab="http://www.ivoa.net/rdf/examples#">\n'
        f"<h1>Example queries for the Starbox TAP service at {escape(base)}</h1>\n"
        + "".join(parts)
        + "</body>\n</html>\n"
    ).encode()
