"""Result formats. PostgreSQL writes every result as CSV (COPY ... TO STDOUT), which is Data
Lab's CSV exactly (NaN, Infinity, empty for NULL) and the fastest way out of the server; the
typed formats parse that stream with Arrow's C++ CSV reader, using the column types of the query.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, NoReturn

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from starbox.client.chunks import ChunkReader

# PostgreSQL type OID -> Arrow type; anything else travels as text.
ARROW_FOR_OID = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    26: pa.int64(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
}


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    table_oid: int = 0  # where the column comes from, when it is a plain table column (for TAP's
    table_col: int = 0  # units and UCDs); 0 for computed columns

    @property
    def arrow_type(self) -> pa.DataType:
        return ARROW_FOR_OID.get(self.type_oid, pa.string())


@dataclass(frozen=True)
class Format:
    name: str
    media_type: str
    suffix: str
    delimiter: str | None = None  # the text formats come straight from COPY
    encode: Callable[[list[Column], Iterator[pa.RecordBatch]], Iterator[bytes]] | None = None


def arrow_schema(columns: list[Column]) -> pa.Schema:
    return pa.schema([pa.field(c.name, c.arrow_type) for c in _unique(columns)])


def _unique(columns: list[Column]) -> list[Column]:
    """Data Lab's convention for repeated names: ra, ra_1, ra_2."""
    seen: dict[str, int] = {}
    out = []
    for c in columns:
        n = seen.get(c.name, 0)
        seen[c.name] = n + 1
        out.append(Column(c.name if n == 0 else f"{c.name}_{n}", c.type_oid))
    return out


def batches_from_csv(columns: list[Column], csv_chunks: Iterable[bytes]) -> Iterator[pa.RecordBatch]:
    """Arrow batches from PostgreSQL's CSV (with a header line)."""
    schema = arrow_schema(columns)
    reader = pacsv.open_csv(
        io.BufferedReader(ChunkReader(csv_chunks), buffer_size=1 << 20),
        read_options=pacsv.ReadOptions(column_names=schema.names, skip_rows=1, block_size=4 << 20),
        convert_options=pacsv.ConvertOptions(
            column_types=schema,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
            timestamp_parsers=[pacsv.ISO8601],
        ),
    )
    for batch in reader:
        yield batch


class _Sink:
    """A write-only file that hands over what was written so far (for streaming writers)."""

    def __init__(self):
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def encode_arrow(columns: list[Column], batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    sink = _Sink()
    with pa.ipc.new_stream(sink, arrow_schema(columns)) as writer:
        for batch in batches:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def encode_parquet(columns: list[Column], batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    import pyarrow.parquet as pq

    sink = _Sink()
    with pq.ParquetWriter(pa.PythonFile(sink, mode="w"), arrow_schema(columns)) as writer:
        for batch in batches:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def astropy_table(columns: list[Column], batches: Iterator[pa.RecordBatch]):
    """The whole result as an astropy Table (VOTable and FITS writers need it in one piece)."""
    from astropy.table import MaskedColumn, Table

    table = pa.Table.from_batches(list(batches), schema=arrow_schema(columns))
    out = Table()
    for name, col in zip(table.column_names, table.columns):
        mask = col.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_string(col.type):
            values = np.array([v if v is not None else "" for v in col.to_pylist()], dtype=str)
        elif pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
            values = np.array([v.isoformat() if v is not None else "" for v in col.to_pylist()], dtype=str)
        elif pa.types.is_boolean(col.type):
            values = col.fill_null(False).to_numpy(zero_copy_only=False)
        else:
            values = col.fill_null(0).to_numpy(zero_copy_only=False)
        out[name] = MaskedColumn(values, mask=mask) if mask.any() else values
    return out


def encode_votable(columns: list[Column], batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    from astropy.io.votable import from_table

    buf = io.BytesIO()
    from_table(astropy_table(columns, batches)).to_xml(buf)
    yield buf.getvalue()


def encode_fits(columns: list[Column], batches: Iterator[pa.RecordBatch]) -> Iterator[bytes]:
    buf = io.BytesIO()
    astropy_table(columns, batches).write(buf, format="fits")
    yield buf.getvalue()


FORMATS = {
    f.name: f
    for f in [
        Format("csv", "text/csv", "csv", delimiter=","),
        Format("tsv", "text/tab-separated-values", "tsv", delimiter="\t"),
        Format("ascii", "text/plain", "txt", delimiter="\t"),
        Format("votable", "application/x-votable+xml", "xml", encode=encode_votable),
        Format("fits", "application/fits", "fits", encode=encode_fits),
        Format("parquet", "application/vnd.apache.parquet", "parquet", encode=encode_parquet),
        Format("arrow", "application/vnd.apache.arrow.stream", "arrow", encode=encode_arrow),
    ]
}


def get(name: str | None) -> Format:
    key = (name or "csv").lower()
    if key in ("pandas", "array", "structarray", "table", "csv-noheader"):
        key = "csv"  # what the dl client converts itself
    fmt = FORMATS.get(key)
    if fmt is None:
        raise_unknown(name)
    return fmt


def raise_unknown(name: str | None) -> NoReturn:
    from starbox.errors import StarboxError

    raise StarboxError(f"Error: unknown output format {name!r}; use one of {', '.join(FORMATS)}")
