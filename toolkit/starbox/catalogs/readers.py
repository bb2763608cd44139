"""Streaming readers for CSV, Parquet, FITS and VOTable files, yielding Arrow record batches.

Each reader knows its columns (with units, UCDs and descriptions when the file carries them)
before the first batch, and reports progress, so the loader can create the table, stream
the rows into COPY and show a progress bar without holding the file in memory.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from starbox.errors import StarboxError

BATCH_ROWS = 100_000
CSV_WRITE = pacsv.WriteOptions(include_header=False)

# PostgreSQL column types for Arrow types, and back (for manifest-typed CSV).
PG_FOR_ARROW = [
    (pa.types.is_boolean, "boolean"),
    (pa.types.is_int8, "smallint"),
    (pa.types.is_int16, "smallint"),
    (pa.types.is_uint8, "smallint"),
    (pa.types.is_int32, "integer"),
    (pa.types.is_uint16, "integer"),
    (pa.types.is_int64, "bigint"),
    (pa.types.is_uint32, "bigint"),
    (pa.types.is_uint64, "numeric"),
    (pa.types.is_float16, "real"),
    (pa.types.is_float32, "real"),
    (pa.types.is_float64, "double precision"),
    (pa.types.is_string, "text"),
    (pa.types.is_large_string, "text"),
    (pa.types.is_timestamp, "timestamp"),
    (pa.types.is_date, "date"),
]
ARROW_FOR_PG = {
    "boolean": pa.bool_(),
    "smallint": pa.int16(),
    "integer": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "double precision": pa.float64(),
    "text": pa.string(),
}


def pg_type(arrow_type: pa.DataType, column: str, path: Path) -> str:
    for test, name in PG_FOR_ARROW:
        if test(arrow_type):
            return name
    raise StarboxError(f"{path}: column {column!r} has type {arrow_type}, which the loader cannot store")


def clean_name(name: str) -> str:
    """A column name as SQL users type it: lower case, letters, digits and underscores."""
    out = re.sub(r"[^a-z0-9_]", "_", str(name).strip().lower()) or "col"
    return "_" + out if out[0].isdigit() else out


@dataclass
class FileColumn:
    name: str
    type: pa.DataType
    unit: str | None = None
    ucd: str | None = None
    description: str | None = None


class Reader:
    """Base: subclasses set columns, total and unit, and implement batches()."""

    unit = "rows"

    def __init__(self, path: Path):
        self.path = path
        self.columns: list[FileColumn] = []
        self.total: int | None = None
        self.done = 0

    # How the loader feeds COPY (FORMAT csv): the columns in the order the text has them, whether
    # the text starts with a header, and what COPY's "line N" counts (data rows, or file lines).
    copy_header = False
    copy_delimiter = ","
    copy_line_is = "row"

    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def copy_columns(self, names: list[str]) -> list[str]:
        return names

    def copy_chunks(self, names: list[str]) -> Iterator[bytes | memoryview]:
        """CSV text for COPY, written by Arrow's C++ writer from each batch."""
        for batch in self.batches():
            buf = io.BytesIO()
            pacsv.write_csv(batch.select(names), buf, CSV_WRITE)
            yield buf.getbuffer()

    def _names(self, raw: list[str]) -> list[str]:
        names = [clean_name(n) for n in raw]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise StarboxError(f"{self.path}: duplicate column name(s) {', '.join(dupes)}")
        return names


class _CountingFile:
    """A binary file that counts the bytes read from it, for a progress bar."""

    def __init__(self, fh):
        self.fh, self.count = fh, 0

    def read(self, n=-1):
        data = self.fh.read(n)
        self.count += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self.fh, name)


class CsvReader(Reader):
    """CSV goes to COPY as it is (PostgreSQL parses it faster than a round trip through Arrow);
    Arrow only infers the column types, over the whole file, when no manifest gives them."""

    unit = "bytes"
    copy_header = True
    copy_line_is = "line"

    def __init__(self, path: Path, types: dict[str, str] | None = None):
        super().__init__(path)
        self.delimiter = self.copy_delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
        header = self._header()
        self.names = self._names(header)
        if types is not None:
            arrow = {n: ARROW_FOR_PG.get(types.get(n, ""), pa.string()) for n in self.names}
        else:
            arrow = self._infer()
        self.types = arrow
        self.columns = [FileColumn(n, arrow[n]) for n in self.names]
        self.total = path.stat().st_size

    def _open(self):
        return gzip.open(self.path, "rb") if self.path.suffix == ".gz" else self.path.open("rb")

    def _header(self) -> list[str]:
        with self._open() as fh:
            line = fh.readline().decode("utf-8", "replace")
        if not line.strip():
            raise StarboxError(f"{self.path}: the file is empty; a CSV file needs a header line")
        return next(csv.reader([line], delimiter=self.delimiter))

    def _stream(self, types: dict[str, pa.DataType], counter: _CountingFile | None = None):
        fh = counter or self._open()
        return pacsv.open_csv(
            fh,
            read_options=pacsv.ReadOptions(block_size=8 << 20, column_names=self.names, skip_rows=1),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )

    def _infer(self) -> dict[str, pa.DataType]:
        """Narrowest type per column over the whole file (pyarrow alone decides on the first block)."""
        ladder = [pa.int64(), pa.float64(), pa.string()]
        level = {n: 0 for n in self.names}
        with self._open() as fh:
            try:
                for batch in self._stream({n: pa.string() for n in self.names}, _CountingFile(fh)):
                    for name, array in zip(self.names, batch.columns):
                        while level[name] < 2:
                            try:
                                pc.cast(array, ladder[level[name]])
                                break
                            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                                level[name] += 1
            except pa.ArrowInvalid as exc:
                raise self._located(exc) from None
        return {n: ladder[level[n]] for n in self.names}

    def batches(self):
        with self._open() as fh:
            counter = _CountingFile(fh)
            try:
                for batch in self._stream(self.types, counter):
                    self.done = counter.count
                    yield batch
            except pa.ArrowInvalid as exc:
                raise self._located(exc) from None
        self.done = self.total

    def copy_columns(self, names: list[str]) -> list[str]:
        return self.names

    def copy_chunks(self, names: list[str]) -> Iterator[bytes | memoryview]:
        with self._open() as fh:
            while chunk := fh.read(8 << 20):
                self.done += len(chunk)
                yield chunk

    def _located(self, exc: Exception) -> StarboxError:
        """Turn pyarrow's message into one naming the line and the column."""
        msg = str(exc)
        width = re.search(r"Expected (\d+) columns, got (\d+)", msg)
        value = re.search(r"column #(\d+): CSV conversion error to (\w+): invalid value '(.*)'", msg)
        with self._open() as fh:
            lines = (raw.decode("utf-8", "replace") for raw in fh)
            for lineno, fields in enumerate(csv.reader(lines, delimiter=self.delimiter), 1):
                if lineno == 1:
                    continue
                if width and len(fields) != int(width.group(1)):
                    return StarboxError(
                        f"{self.path}: line {lineno}: expected {width.group(1)} columns, found {len(fields)}"
                    )
                if value:
                    k = int(value.group(1))
                    if k < len(fields) and fields[k] == value.group(3):
                        return StarboxError(
                            f"{self.path}: line {lineno}, column {self.names[k]}: "
                            f"{value.group(3)!r} is not a valid {value.group(2)}"
                        )
        return StarboxError(f"{self.path}: {msg.splitlines()[0]}")


class ParquetReader(Reader):
    def __init__(self, path: Path):
        super().__init__(path)
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise StarboxError(f"{path}: not a readable Parquet file ({exc})") from None
        schema = self.file.schema_arrow
        self.names = self._names(schema.names)
        self.columns = [FileColumn(n, f.type) for n, f in zip(self.names, schema)]
        self.total = self.file.metadata.num_rows

    def batches(self):
        for batch in self.file.iter_batches(batch_size=BATCH_ROWS):
            self.done += batch.num_rows
            yield pa.RecordBatch.from_arrays(batch.columns, names=self.names)


def _native(array: np.ndarray, name: str, path: Path) -> pa.Array:
    """A FITS/VOTable column chunk as an Arrow array in native byte order."""
    if array.ndim > 1:
        raise StarboxError(f"{path}: column {name!r} holds arrays; the loader stores scalar columns only")
    mask = np.ma.getmaskarray(array) if np.ma.isMaskedArray(array) else None
    data = np.ma.getdata(array)
    if data.dtype.kind == "S":
        data = np.char.rstrip(np.char.decode(data, "utf-8", "replace"))
    elif data.dtype.kind == "U":
        data = np.char.rstrip(data)
    elif data.dtype.kind == "O":
        return pa.array(list(data), mask=mask)
    elif data.dtype.byteorder not in ("=", "|"):
        data = data.astype(data.dtype.newbyteorder("="))
    return pa.array(data, mask=mask if mask is not None and mask.any() else None)


class FitsReader(Reader):
    def __init__(self, path: Path):
        super().__init__(path)
        from astropy.io import fits

        try:
            self.hdul = fits.open(path, memmap=True)
        except (OSError, ValueError) as exc:
            raise StarboxError(f"{path}: not a readable FITS file ({exc})") from None
        self.hdu = next((h for h in self.hdul if isinstance(h, (fits.BinTableHDU, fits.TableHDU))), None)
        if self.hdu is None:
            raise StarboxError(f"{path}: the FITS file has no table extension")
        cols = self.hdu.columns
        self.raw_names = list(cols.names)
        self.names = self._names(self.raw_names)
        self.total = self.hdu.header.get("NAXIS2", 0)
        first = self._chunk(0, min(1, self.total)) if self.total else None
        self.columns = [
            FileColumn(n, first.column(i).type if first is not None else pa.float64(), unit=c.unit or None)
            for i, (n, c) in enumerate(zip(self.names, cols))
        ]

    def _chunk(self, start: int, stop: int) -> pa.RecordBatch:
        rows = self.hdu.data[start:stop]  # type: ignore[union-attr]  # hdu is checked in __init__
        arrays = [_native(np.asarray(rows.field(raw)), n, self.path) for raw, n in zip(self.raw_names, self.names)]
        return pa.RecordBatch.from_arrays(arrays, names=self.names)

    def batches(self):
        try:
            for start in range(0, self.total, BATCH_ROWS):
                stop = min(start + BATCH_ROWS, self.total)
                yield self._chunk(start, stop)
                self.done = stop
        finally:
            self.hdul.close()


class VotableReader(Reader):
    """VOTables are parsed whole by astropy (the format has no streaming reader there); they are small."""

    def __init__(self, path: Path):
        super().__init__(path)
        from astropy.io import votable

        try:
            vot = votable.parse(str(path), verify="ignore")
            table = vot.get_first_table()
        except Exception as exc:  # astropy raises many types for malformed XML
            raise StarboxError(f"{path}: not a readable VOTable ({str(exc).splitlines()[0]})") from None
        self.fields = table.fields
        self.array = table.array
        self.names = self._names([f.name for f in self.fields])
        self.total = len(self.array)
        first = self._chunk(0, min(1, self.total))
        self.columns = [
            FileColumn(
                n,
                first.column(i).type,
                unit=str(f.unit) if f.unit else None,
                ucd=f.ucd or None,
                description=f.description or None,
            )
            for i, (n, f) in enumerate(zip(self.names, self.fields))
        ]

    def _chunk(self, start: int, stop: int) -> pa.RecordBatch:
        arrays = [_native(self.array[f.name][start:stop], n, self.path) for f, n in zip(self.fields, self.names)]
        return pa.RecordBatch.from_arrays(arrays, names=self.names)

    def batches(self):
        for start in range(0, self.total, BATCH_ROWS):
            stop = min(start + BATCH_ROWS, self.total)
            yield self._chunk(start, stop)
            self.done = stop


def open_reader(path: Path, types: dict[str, str] | None = None) -> Reader:
    """The reader for `path`, chosen by its suffix."""
    if not path.is_file():
        raise StarboxError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz")):
        return CsvReader(path, types)
    if name.endswith((".parquet", ".pq")):
        return ParquetReader(path)
    if name.endswith((".fits", ".fit", ".fits.gz", ".fts")):
        return FitsReader(path)
    if name.endswith((".vot", ".votable", ".xml", ".vot.xml")):
        return VotableReader(path)
    raise StarboxError(f"{path}: unknown file type; use .csv, .tsv, .parquet, .fits or .vot/.xml")
