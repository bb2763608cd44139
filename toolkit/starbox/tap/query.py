"""A TAP query: its parameters, its SQL, its output format, and running it (sync or as a job).

Execution is starbox.query's: the user's own database login, COPY ... TO STDOUT, Arrow batches.
TAP adds MAXREC (the query asks for MAXREC + 1 rows; the extra one only marks the overflow),
metadata from TAP_SCHEMA in the result, and uploads.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Iterator

import pyarrow as pa

from starbox.accounts import User
from starbox.errors import StarboxError
from starbox.query import formats, run
from starbox.query.prepare import Prepared, prepare
from starbox.tap import adql, geometry, metadata, upload, votable
from starbox.tap.params import Params


@dataclass(frozen=True)
class OutputFormat:
    name: str  # votable, csv, tsv, fits, parquet
    media_type: str
    serialization: str = "BINARY2"

    @property
    def text(self) -> bool:
        return self.name in ("csv", "tsv")


VOTABLE = OutputFormat("votable", votable.MEDIA_TYPE)
# FORMAT / RESPONSEFORMAT values (lower case, without spaces) -> format.
FORMATS = {
    "votable": VOTABLE,
    "application/x-votable+xml": VOTABLE,
    "text/xml": VOTABLE,
    "votable/b2": VOTABLE,
    "votableb2": VOTABLE,
    "application/x-votable+xml;serialization=binary2": VOTABLE,
    "votable/td": OutputFormat("votable", votable.MEDIA_TYPE, "TABLEDATA"),
    "votabletd": OutputFormat("votable", votable.MEDIA_TYPE, "TABLEDATA"),
    "application/x-votable+xml;serialization=tabledata": OutputFormat("votable", votable.MEDIA_TYPE, "TABLEDATA"),
    "text/xml;serialization=tabledata": OutputFormat("votable", votable.MEDIA_TYPE, "TABLEDATA"),
    "csv": OutputFormat("csv", "text/csv"),
    "text/csv": OutputFormat("csv", "text/csv"),
    "text/csv;header=present": OutputFormat("csv", "text/csv"),
    "tsv": OutputFormat("tsv", "text/tab-separated-values"),
    "text/tab-separated-values": OutputFormat("tsv", "text/tab-separated-values"),
    "fits": OutputFormat("fits", "application/fits"),
    "application/fits": OutputFormat("fits", "application/fits"),
    "parquet": OutputFormat("parquet", "application/vnd.apache.parquet"),
    "application/vnd.apache.parquet": OutputFormat("parquet", "application/vnd.apache.parquet"),
    "application/x-parquet": OutputFormat("parquet", "application/vnd.apache.parquet"),
}
# What capabilities advertises: (media type, short names).
ADVERTISED = [
    ("application/x-votable+xml", ["votable", "votable/b2"]),
    ("application/x-votable+xml;serialization=TABLEDATA", ["votable/td"]),
    ("text/csv", ["csv"]),
    ("text/tab-separated-values", ["tsv"]),
    ("application/fits", ["fits"]),
    ("application/vnd.apache.parquet", ["parquet"]),
]
LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")


@dataclass
class TapQuery:
    query: str
    fmt: OutputFormat = VOTABLE
    maxrec: int = 0
    uploads: dict[str, bytes] = field(default_factory=dict)  # table name -> VOTable


def output_format(value: str | None) -> OutputFormat:
    if value is None or not value.strip():
        return VOTABLE
    key = re.sub(r"\s+", "", value).lower()
    fmt = FORMATS.get(key) or FORMATS.get(key.split(";")[0] if "serialization" not in key else "")
    if fmt is None:
        raise StarboxError(f"Error: unknown FORMAT {value!r}; use votable, votable/td, csv, tsv, fits or parquet")
    return fmt


def maxrec_of(value: str | None, default: int, hard: int) -> int:
    if value is None or not str(value).strip():
        return default
    try:
        n = int(str(value).strip())
    except ValueError:
        raise StarboxError(f"Error: MAXREC must be a whole number, not {value!r}") from None
    if n < 0:
        raise StarboxError(f"Error: MAXREC must not be negative (got {n})")
    return min(n, hard)


def from_params(p: Params, settings) -> TapQuery:
    """Check the DALI/TAP parameters of a query; refusals name the parameter."""
    request = p.get("REQUEST")
    if request is not None and request.strip().lower() != "doquery":
        raise StarboxError(f"Error: REQUEST={request!r} is not supported; use REQUEST=doQuery")
    lang = (p.get("LANG") or "ADQL").strip()
    if lang.upper() not in LANGS:
        raise StarboxError(f"Error: LANG={lang!r} is not supported; use LANG=ADQL")
    query = p.get("QUERY")
    if query is None or not query.strip():
        raise StarboxError("Error: the QUERY parameter is missing or empty")
    fmt = output_format(p.get("RESPONSEFORMAT") or p.get("FORMAT"))
    maxrec = maxrec_of(p.get("MAXREC"), settings.tap_maxrec, settings.tap_maxrec_max)
    uploads: dict[str, bytes] = {}
    for value in p.all("UPLOAD"):
        for name, uri in upload.parse_param(value):
            uploads[name] = upload.resolve(name, uri, p.files)
    return TapQuery(query, fmt, maxrec, uploads)


# -- ADQL -> the SQL that runs -----------------------------------------------------------------


def translated(pools, user: User, text: str) -> tuple[str, set[str]]:
    """ADQL -> the PostgreSQL that runs, for TAP and the Data Lab API alike (the same ADQL gives
    the same rows at the same speed on both): names, then spatial predicates onto the indexes.
    Returns the SQL and the TAP_UPLOAD tables it uses."""
    sql, used = adql.translate(text, user)
    return geometry.rewrite(sql, lambda tables: geometry.cached_indexes(lambda: pools.user(user), tables)), used


def prepare_data_lab(pools, user: User, sql: str | None = None, adql: str | None = None) -> Prepared:
    """The Data Lab API's query (sql= or adql=, as qc.query sends them) ready to run: its ADQL
    through TAP's translator, its SQL through the statement guard (starbox.query.prepare)."""
    if not (adql and adql.strip()):
        return prepare(user, sql=sql)
    text, used = translated(pools, user, adql)
    if used:
        raise StarboxError(
            "Error: TAP_UPLOAD tables come with a TAP query's UPLOAD parameter (/tap/sync); "
            "the Data Lab API has none: import the table into MyDB and use mydb.<table>"
        )
    return Prepared(text, True)


def to_sql(pools, user: User, q: TapQuery, cut: int | None = None) -> Prepared:
    """ADQL -> PostgreSQL: names, indexes, uploads, and a LIMIT of `cut` rows."""
    sql, used = translated(pools, user, q.query)
    sql = upload.attach(sql, used, q.uploads)
    if cut is not None:
        sql = f"SELECT * FROM (\n{sql}\n) _tap LIMIT {int(cut)}"
    return Prepared(sql, True)


_NAMED = re.compile(r'(?:column|relation|table|schema|function) "?([^"\s(]+)', re.I)


def locate(message: str, query: str) -> str:
    """Add where in the user's query a missing table or column appears (PostgreSQL's positions
    refer to the translated SQL, not to what the user typed)."""
    m = _NAMED.search(message)
    if not m or "does not exist" not in message:
        return message
    full = m.group(1)
    name = full.split(".")[-1]
    hit = re.search(rf"(?<![\w.]){re.escape(full)}\b", query, re.I) or re.search(
        rf"(?<![\w.]){re.escape(name)}\b|(?<=\.){re.escape(name)}\b", query, re.I
    )
    if not hit:
        return message
    line = query.count("\n", 0, hit.start()) + 1
    col = hit.start() - (query.rfind("\n", 0, hit.start()) + 1) + 1
    return f"{message} (at line {line}, column {col} of the query)"


def refusal(exc: StarboxError, query: str | None) -> StarboxError:
    located = locate(str(exc), query) if query else str(exc)
    return exc if located == str(exc) else type(exc)(located)


# -- output ------------------------------------------------------------------------------------


def _infos(q: TapQuery) -> list[str]:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        votable.info("QUERY", q.query),
        votable.info("REQUEST_DATE", now),
        votable.info("SERVICE_PROTOCOL", "1.1", "ivo://ivoa.net/std/TAP"),
        votable.info("MAXREC", str(q.maxrec)),
    ]


def encoder(pools, q: TapQuery, outcome: votable.Outcome, ucds: dict | None = None) -> formats.Format:
    """A starbox.query Format whose encoder writes TAP's output with TAP_SCHEMA metadata
    (`ucds` overrides the UCDs of some columns: cone search wants its UCD1 names)."""
    fmt = q.fmt

    def fields_of(columns):
        fields = metadata.result_fields(pools, columns)
        for f in fields:
            if ucds and f.name in ucds:
                f.ucd = ucds[f.name]
        return fields

    if fmt.text:
        base = formats.FORMATS[fmt.name]
        return formats.Format(fmt.name, fmt.media_type, base.suffix, delimiter=base.delimiter)

    def encode_votable(columns, batches):
        yield from votable.write(
            fields_of(columns),
            batches,
            maxrec=q.maxrec,
            serialization=fmt.serialization,
            infos=_infos(q),
            outcome=outcome,
        )

    def encode_parquet(columns, batches):
        yield from _parquet(fields_of(columns), columns, batches, q.maxrec, outcome)

    def encode_fits(columns, batches):
        yield _fits(fields_of(columns), columns, batches, q.maxrec, outcome)

    encode = {"votable": encode_votable, "parquet": encode_parquet, "fits": encode_fits}[fmt.name]
    suffix = {"votable": "xml", "parquet": "parquet", "fits": "fits"}[fmt.name]
    return formats.Format(fmt.name, fmt.media_type, suffix, encode=encode)


def _limited(batches, maxrec: int, outcome: votable.Outcome) -> Iterator[pa.RecordBatch]:
    batches = iter(batches)
    yield from votable._limited(next(batches, None), batches, maxrec, outcome)


def _parquet(fields, columns, batches, maxrec, outcome) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    schema = formats.arrow_schema(columns)
    schema = pa.schema(
        [
            f.with_metadata({k: v for k, v in (("unit", m.unit), ("ucd", m.ucd), ("description", m.description)) if v})
            for f, m in zip(schema, fields)
        ]
    )
    sink = formats._Sink()
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema) as writer:
        for batch in _limited(batches, maxrec, outcome):
            writer.write_batch(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            yield sink.take()
        writer.add_key_value_metadata({"QUERY_STATUS": "OVERFLOW" if outcome.overflow else "OK"})
    yield sink.take()


def _fits(fields, columns, batches, maxrec, outcome) -> bytes:
    import io
    import warnings

    import astropy.units as u

    table = formats.astropy_table(columns, _limited(batches, maxrec, outcome))
    for name, f in zip(table.colnames, fields):
        if f.unit:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table[name].unit = u.Unit(f.unit, format="vounit", parse_strict="silent")
        if f.description:
            table[name].description = f.description
    table.meta["QUERY_ST"] = "OVERFLOW" if outcome.overflow else "OK"
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table.write(buf, format="fits")
    return buf.getvalue()


def stream(
    pools, user: User, q: TapQuery, timeout_s: int, row_cap: int, open_conn=None, ucds: dict | None = None
) -> tuple[OutputFormat, Iterator[bytes], votable.Outcome]:
    """Run the query; the first chunk is computed before this returns, so errors raise here."""
    outcome = votable.Outcome()
    # CSV and TSV have no place for DALI's overflow mark: they get exactly MAXREC rows (the
    # capabilities say so; VOTable, FITS and Parquet carry the mark).
    cut = q.maxrec if q.fmt.text else q.maxrec + 1
    try:
        prepared = to_sql(pools, user, q, cut)
        _, chunks = run.stream(
            open_conn or (lambda: pools.user(user)),
            prepared,
            encoder(pools, q, outcome, ucds),
            run.Limits(timeout_s, max(cut, row_cap)),
        )  # LIMIT cut does the cutting
    except StarboxError as exc:
        raise refusal(exc, q.query) from None
    return q.fmt, chunks, outcome
