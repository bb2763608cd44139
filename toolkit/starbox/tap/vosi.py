"""VOSI 1.1: availability and capabilities (with TAPRegExt 1.0). The tables document is in
metadata.py, next to the other readers of TAP_SCHEMA."""

from __future__ import annotations

import datetime as dt
from xml.sax.saxutils import escape

from starbox.tap import query, upload

STARTED = dt.datetime.now(dt.timezone.utc)

# ADQL features that work here (each one has a test in tests/test_tap.py or passes taplint).
GEOMETRY = [
    "POINT",
    "CIRCLE",
    "BOX",
    "POLYGON",
    "CONTAINS",
    "INTERSECTS",
    "DISTANCE",
    "AREA",
    "COORD1",
    "COORD2",
    "COORDSYS",
    "CENTROID",
]
FEATURES = {
    "ivo://ivoa.net/std/TAPRegExt#features-adqlgeo": [(f, None) for f in GEOMETRY],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-string": [
        ("LOWER", "lower-case a string"),
        ("UPPER", "upper-case a string"),
        ("ILIKE", "case-insensitive LIKE"),
    ],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-offset": [("OFFSET", "skip rows of the result")],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-sets": [
        ("UNION", "rows of either query"),
        ("INTERSECT", "rows of both queries"),
        ("EXCEPT", "rows of the first query that are not in the second"),
    ],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-common-table": [
        ("WITH", "name a query and read it as a table in the main query")
    ],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-bitwise": [
        ("BIT_AND", "a & b, of integers"),
        ("BIT_OR", "a | b, of integers"),
        ("BIT_XOR", "a ^ b, of integers"),
        ("BIT_NOT", "~a, of an integer"),
    ],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-unit": [
        ("IN_UNIT", "a catalog column converted to another unit, e.g. IN_UNIT(plx, 'arcsec')")
    ],
    "ivo://ivoa.net/std/TAPRegExt#features-udf": [
        ("ivo_hasword(haystack TEXT, needle TEXT) -> INTEGER", "1 if every word of needle is a word of haystack"),
        ("ivo_healpix_index(hpxOrder INTEGER, ra DOUBLE, dec DOUBLE) -> BIGINT", "the NESTED HEALPix index"),
        ("ivo_healpix_index(hpxOrder INTEGER, p POINT) -> BIGINT", "the NESTED HEALPix index of a point"),
    ],
    "ivo://ivoa.net/std/TAPRegExt#features-adql-type": [
        ("CAST", "convert to SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR(n), VARCHAR(n), TIMESTAMP")
    ],
}


def availability(pools) -> bytes:
    """Up when the database answers."""
    try:
        with pools.state_conn() as conn:
            conn.execute("SELECT 1")
        up, note = True, "Starbox TAP is accepting queries"
    except Exception as exc:  # any failure means not available; say which
        up, note = False, f"the database does not answer: {type(exc).__name__}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:availability xmlns:vosi="http://www.ivoa.net/xml/VOSIAvailability/v1.0">'
        f"<vosi:available>{'true' if up else 'false'}</vosi:available>"
        f"<vosi:upSince>{STARTED.strftime('%Y-%m-%dT%H:%M:%SZ')}</vosi:upSince>"
        f"<vosi:note>{escape(note)}</vosi:note></vosi:availability>\n"
    ).encode()


def _vosi(standard: str, url: str) -> str:
    return (
        f'<capability standardID="{standard}"><interface xsi:type="vs:ParamHTTP">'
        f'<accessURL use="full">{escape(url)}</accessURL></interface></capability>'
    )


def capabilities(base: str, settings, obscore: bool = True, anonymous: bool = False) -> bytes:
    """/capabilities: the TAP capability with what this service does, and the VOSI endpoints.
    `base` is the TAP service's URL (…/tap). An anonymous caller is told its own job limits
    (a shorter run time and lifetime than a logged-in user's)."""
    duration = settings.async_timeout(anonymous)
    retention = min(settings.anon_job_lifetime, 604800) if anonymous else 604800
    retention_hard = settings.anon_job_lifetime if anonymous else 2592000
    langs = []
    for ftype, feats in FEATURES.items():
        body = "".join(
            f"<feature><form>{escape(form)}</form>"
            + (f"<description>{escape(desc)}</description>" if desc else "")
            + "</feature>"
            for form, desc in feats
        )
        langs.append(f'<languageFeatures type="{ftype}">{body}</languageFeatures>')
    outputs = []
    for mime, aliases in query.ADVERTISED:
        ivo = ""
        if mime == "application/x-votable+xml":
            ivo = ' ivo-id="ivo://ivoa.net/std/TAPRegExt#output-votable-binary2"'
        elif "TABLEDATA" in mime:
            ivo = ' ivo-id="ivo://ivoa.net/std/TAPRegExt#output-votable-td"'
        outputs.append(
            f"<outputFormat{ivo}><mime>{escape(mime)}</mime>"
            + "".join(f"<alias>{escape(a)}</alias>" for a in aliases)
            + "</outputFormat>"
        )
    tap = (
        '<capability standardID="ivo://ivoa.net/std/TAP" xsi:type="tr:TableAccess">'
        '<interface role="std" version="1.1" xsi:type="vs:ParamHTTP">'
        f'<accessURL use="base">{escape(base)}</accessURL></interface>'
        + ('<dataModel ivo-id="ivo://ivoa.net/std/ObsCore#core-1.1">ObsCore-1.1</dataModel>' if obscore else "")
        + "<language><name>ADQL</name>"
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.0">2.0</version>'
        '<version ivo-id="ivo://ivoa.net/std/ADQL#v2.1">2.1</version>'
        "<description>ADQL through queryparser-python3 on PostgreSQL with q3c and pgsphere. "
        "mydb.t (or mydb://t) names a table of your MyDB when you send your token. "
        "MAXREC overflow is marked in VOTable, FITS (QUERY_ST) and Parquet (QUERY_STATUS); "
        "CSV and TSV have no place for the mark and hold exactly MAXREC rows.</description>"
        + "".join(langs)
        + "</language>"
        + "".join(outputs)
        + '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-inline"/>'
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-http"/>'
        '<uploadMethod ivo-id="ivo://ivoa.net/std/TAPRegExt#upload-https"/>'
        f"<retentionPeriod><default>{retention}</default><hard>{retention_hard}</hard></retentionPeriod>"
        f"<executionDuration><default>{duration}</default><hard>{duration}</hard></executionDuration>"
        f'<outputLimit><default unit="row">{settings.tap_maxrec}</default>'
        f'<hard unit="row">{settings.tap_maxrec_max}</hard></outputLimit>'
        f'<uploadLimit><hard unit="byte">{upload.MAX_BYTES}</hard></uploadLimit>'
        "</capability>"
    )
    doc = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<vosi:capabilities xmlns:vosi="http://www.ivoa.net/xml/VOSICapabilities/v1.0"'
        ' xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"'
        ' xmlns:vs="http://www.ivoa.net/xml/VODataService/v1.1"'
        ' xmlns:tr="http://www.ivoa.net/xml/TAPRegExt/v1.0"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        + tap
        + _vosi("ivo://ivoa.net/std/VOSI#capabilities", f"{base}/capabilities")
        + _vosi("ivo://ivoa.net/std/VOSI#availability", f"{base}/availability")
        + _vosi("ivo://ivoa.net/std/VOSI#tables-1.1", f"{base}/tables")
        + _vosi("ivo://ivoa.net/std/DALI#examples", f"{base}/examples")
        + "</vosi:capabilities>\n"
    )
    return doc.encode()
