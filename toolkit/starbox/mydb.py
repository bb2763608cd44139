"""MyDB: each user's own tables, in the schema `mydb_<name>` that the user's role owns.

Plain functions behind /query/list, /create, /ingest, /import, /truncate, /index, /delete,
/rename, /copy and /flush. Each takes (conn_or_pools, settings, user, ...): either the service's
Pools (the function borrows a connection logged in as the user's own role) or a connection that
already runs as that role. All SQL runs as the user, so PostgreSQL itself refuses another user's
schema and every catalog write; names reach SQL only through psycopg.sql.Identifier.

Every failure is a StarboxError with a one-line message and a 4xx status (503 if the database
is unreachable). Loads stream the file into COPY inside one transaction: a failure leaves no
table behind (and an existing table that an import was replacing stays as it was).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import re
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psycopg
import pyarrow as pa
from psycopg import sql

from starbox import db_errors, mydb_quota, outbound, storage_home
from starbox.accounts import User
from starbox.catalogs import readers
from starbox.catalogs.loader import copy_error
from starbox.errors import Conflict, NotFound, StarboxError, Unauthorized
from starbox.settings import Settings
from starbox.storage.paths import resolve

NAME_RE = re.compile(r"^[a-z_][a-z0-9_]*$")  # Data Lab's rule: [a-z0-9_], not starting with a digit
MAX_IDENT = 63
CREATED_TAG = "starbox:created="
# The relation kinds a MyDB lists and drops: tables, partitioned tables, views, materialized views,
# foreign tables (starbox_lookup.relations.kind).
_LISTED = "('r', 'p', 'v', 'm', 'f')"
FETCH_DEADLINE = 600.0  # seconds an import from a URL may spend downloading

# --- names -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    shown: str  # as the user wrote it, without mydb://, for messages

    @property
    def ident(self) -> sql.Identifier:
        return sql.Identifier(self.schema, self.name)


def _require_user(user: User) -> str:
    """The user's MyDB schema; anonymous callers have none."""
    if user is None or user.anonymous or user.schema is None:
        raise Unauthorized("Error: MyDB needs a logged-in user; anonymous access is read-only")
    return user.schema


def _split(raw: str | None) -> tuple[str, list[str]]:
    name = (raw or "").strip()
    shown = name[len("mydb://") :] if name.startswith("mydb://") else name
    parts = shown.split(".")
    if not shown or len(parts) > 2 or not all(NAME_RE.match(p) and len(p) <= MAX_IDENT for p in parts):
        raise StarboxError(f'Error: Invalid table name: "{raw or ""}"')
    return shown, parts


def table_name(user: User, raw: str | None) -> Table:
    """A table in the user's MyDB: `t`, `mydb://t`, `mydb.t` or `mydb_<user>.t`; else 400."""
    schema = _require_user(user)
    shown, parts = _split(raw)
    if len(parts) == 2 and parts[0] not in ("mydb", schema):
        raise StarboxError(f'Error: Invalid table name: "{raw}"')
    return Table(schema, parts[-1], shown)


def source_name(user: User, raw: str | None) -> Table:
    """A table to read from: a MyDB name as above, or `schema.table` anywhere (the database decides)."""
    schema = _require_user(user)
    shown, parts = _split(raw)
    if len(parts) == 1 or parts[0] == "mydb":
        return Table(schema, parts[-1], shown)
    return Table(parts[0], parts[1], shown)


def column_name(raw: str | None, what: str = "column") -> str:
    name = (raw or "").strip().lower()
    if not NAME_RE.match(name) or len(name) > MAX_IDENT:
        raise StarboxError(f'Error: Invalid {what} name: "{raw or ""}"')
    return name


# Column types a user may ask for in /create (and schema_def): canonical SQL for each spelling.
_SIMPLE_TYPES = {
    "smallint": "smallint",
    "int2": "smallint",
    "integer": "integer",
    "int": "integer",
    "int4": "integer",
    "bigint": "bigint",
    "int8": "bigint",
    "real": "real",
    "float4": "real",
    "double precision": "double precision",
    "float8": "double precision",
    "float": "double precision",
    "double": "double precision",
    "text": "text",
    "varchar": "varchar",
    "character varying": "varchar",
    "char": "char(1)",
    "character": "char(1)",
    "boolean": "boolean",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamp without time zone": "timestamp",
    "timestamptz": "timestamptz",
    "timestamp with time zone": "timestamptz",
    "numeric": "numeric",
    "decimal": "numeric",
    "": "text",  # the client's getSchema leaves the type empty for an all-NA column
}
_SIZED_TYPE = re.compile(r"^(varchar|character varying|char|character)\s*\(\s*(\d{1,5})\s*\)$")
_NUMERIC_TYPE = re.compile(r"^(numeric|decimal)\s*\(\s*(\d{1,4})\s*(?:,\s*(\d{1,4})\s*)?\)$")


def column_type(raw: str) -> str:
    """The canonical SQL of a whitelisted type; anything else is refused with a 400."""
    text = re.sub(r"\s+", " ", (raw or "").strip().lower())
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    sized = _SIZED_TYPE.match(text)
    if sized and 0 < int(sized.group(2)) <= 10485760:
        base = "varchar" if sized.group(1) in ("varchar", "character varying") else "char"
        return f"{base}({int(sized.group(2))})"
    num = _NUMERIC_TYPE.match(text)
    if num:
        p, s = int(num.group(2)), num.group(3)
        if 1 <= p <= 1000 and (s is None or int(s) <= p):
            return f"numeric({p})" if s is None else f"numeric({p},{int(s)})"
    raise StarboxError(
        f'Error: unsupported column type "{raw}"; use smallint, integer, bigint, real, double precision, '
        "text, varchar(n), char(n), boolean, date, timestamp or numeric(p,s)"
    )


def parse_schema(text: str | None) -> list[tuple[str, str]]:
    """`col,type` lines (Data Lab's mydb_create schema) -> [(column, canonical SQL type)]."""
    columns: list[tuple[str, str]] = []
    for line in (text or "").replace("\r", "\n").split("\n"):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, kind = line.partition(",")
        columns.append((column_name(name.strip().strip('"')), column_type(kind)))
    if not columns:
        raise StarboxError("Error: no schema given: send lines of `column,type`")
    seen = [n for n, _ in columns]
    dupes = sorted({n for n in seen if seen.count(n) > 1})
    if dupes:
        raise StarboxError(f"Error: duplicate column name(s) in the schema: {', '.join(dupes)}")
    return columns


# --- connections and errors ------------------------------------------------------------------


@contextmanager
def _connection(conn_or_pools, user: User) -> Iterator[psycopg.Connection]:
    _require_user(user)
    if isinstance(conn_or_pools, psycopg.Connection):
        yield conn_or_pools
    else:
        with conn_or_pools.user(user) as conn:
            yield conn


def _db_errors(shown: str | None = None):
    """psycopg errors -> StarboxError with the right status; `shown` names the table for 404s."""
    return db_errors.translated(shown=shown)


def _relation_exists(cur, table: Table) -> bool:
    return (
        cur.execute(
            f"SELECT 1 FROM starbox_lookup.relations WHERE schema_name = %s AND name = %s AND kind IN {_LISTED}",
            (table.schema, table.name),
        ).fetchone()
        is not None
    )


def stamp_created(cur, schema: str, name: str) -> None:
    """Remember when a MyDB table was made (PostgreSQL keeps no creation time): /list shows it."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    cur.execute(
        sql.SQL("COMMENT ON TABLE {} IS {}").format(sql.Identifier(schema, name), sql.Literal(CREATED_TAG + now))
    )


def _created(comment: str | None) -> str:
    if comment and comment.startswith(CREATED_TAG):
        try:
            when = dt.datetime.fromisoformat(comment[len(CREATED_TAG) :].strip())
            return when.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
        except ValueError:
            pass
    return "unknown"


# --- listing ---------------------------------------------------------------------------------


def list_tables(conn_or_pools, settings: Settings, user: User, table: str | None = None, index: bool = False) -> str:
    """No table: `name,created:YYYY-MM-DD HH:MM:SS TZ` per table. A table: `column,type` lines
    (with index=True, then `index_name,definition` lines for its indexes)."""
    _require_user(user)
    target = table_name(user, table) if table else None
    with _connection(conn_or_pools, user) as conn, _db_errors(target.shown if target else None):
        with conn.transaction(), conn.cursor() as cur:
            if target is None:
                rows = cur.execute(
                    "SELECT name, comment FROM starbox_lookup.relations"
                    f" WHERE schema_name = %s AND kind IN {_LISTED} ORDER BY name",
                    (user.schema,),
                ).fetchall()
                return "\n".join(f"{name},created:{_created(comment)}" for name, comment in rows)
            oid = cur.execute(
                f"SELECT oid FROM starbox_lookup.relations WHERE schema_name = %s AND name = %s AND kind IN {_LISTED}",
                (target.schema, target.name),
            ).fetchone()
            if oid is None:
                raise NotFound(f'relation "{target.shown}" not known')
            lines = [
                f"{name},{kind}"
                for name, kind in cur.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                    " WHERE attrelid = %s AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    (oid[0],),
                )
            ]
            if index:
                lines += [
                    f"{name},{definition}"
                    for name, definition in cur.execute(
                        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s"
                        " ORDER BY indexname",
                        (target.schema, target.name),
                    )
                ]
            return "\n".join(lines)


# --- creating and changing tables ------------------------------------------------------------


def create_table(conn_or_pools, settings: Settings, user: User, table: str, schema: str, drop: bool = True) -> str:
    """An empty table from `col,type` lines; drop=True replaces an existing one."""
    target = table_name(user, table)
    columns = parse_schema(schema)
    with _connection(conn_or_pools, user) as conn, _db_errors(target.shown):
        with conn.transaction(), conn.cursor() as cur:
            if drop:
                cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target.ident))
            cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target.ident, _coldefs(columns)))
            stamp_created(cur, target.schema, target.name)
    return "OK"


def _coldefs(columns: list[tuple[str, str]]) -> sql.Composable:
    # Types are canonical strings from the whitelist above, never the user's text.
    return sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns)


def truncate_table(conn_or_pools, settings: Settings, user: User, table: str) -> str:
    target = table_name(user, table)
    with _connection(conn_or_pools, user) as conn, _db_errors(target.shown):
        with conn.transaction():
            conn.execute(sql.SQL("TRUNCATE TABLE {}").format(target.ident))
    return "OK"


def drop_table(conn_or_pools, settings: Settings, user: User, table: str) -> str:
    target = table_name(user, table)
    with _connection(conn_or_pools, user) as conn, _db_errors(target.shown):
        with conn.transaction():
            conn.execute(sql.SQL("DROP TABLE {}").format(target.ident))
    return "OK"


def rename_table(conn_or_pools, settings: Settings, user: User, source: str, target: str) -> str:
    if not source or not target:
        raise StarboxError("Error: rename needs both source and target")
    old, new = table_name(user, source), table_name(user, target)
    with _connection(conn_or_pools, user) as conn, _db_errors(old.shown):
        with conn.transaction():
            conn.execute(sql.SQL("ALTER TABLE {} RENAME TO {}").format(old.ident, sql.Identifier(new.name)))
    return "OK"


def copy_table(conn_or_pools, settings: Settings, user: User, source: str, target: str) -> str:
    """A new MyDB table holding the rows of `source` (a MyDB table, or any table the user may read)."""
    if not source or not target:
        raise StarboxError("Error: copy needs both source and target")
    old, new = source_name(user, source), table_name(user, target)
    with _connection(conn_or_pools, user) as conn, _db_errors(old.shown):
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(sql.SQL("CREATE TABLE {} AS TABLE {}").format(new.ident, old.ident))
            stamp_created(cur, new.schema, new.name)
            mydb_quota.check(cur, settings.mydb_quota_mb, new.schema)
    return "OK"


def index_table(
    conn_or_pools,
    settings: Settings,
    user: User,
    table: str,
    column: str | None = None,
    q3c: str | None = None,
    cluster: bool = False,
) -> str:
    """A btree index on `column`, or with q3c='ra,dec' one on q3c_ang2ipix(ra, dec); cluster=True
    then rewrites the table in that index's order. Asking again for the same index is a no-op."""
    target = table_name(user, table)
    if q3c and q3c.strip() not in ("", "None"):
        parts = q3c.split(",")
        if len(parts) != 2:
            raise StarboxError(f'Error: q3c needs two columns, as "ra,dec", not "{q3c}"')
        ra, dec = (column_name(p) for p in parts)
        index = f"{target.name}_q3c_idx"[:MAX_IDENT]
        expr = sql.SQL("(q3c_ang2ipix({}, {}))").format(sql.Identifier(ra), sql.Identifier(dec))
    else:
        if not column or column.strip() in ("", "None"):
            raise StarboxError("Error: index needs a column (col=) or q3c=ra,dec")
        col = column_name(column)
        index = f"{target.name}_{col}_idx"[:MAX_IDENT]
        expr = sql.SQL("({})").format(sql.Identifier(col))
    with _connection(conn_or_pools, user) as conn, _db_errors(target.shown):
        with conn.transaction(), conn.cursor() as cur:
            if not _relation_exists(cur, target):
                raise NotFound(f'relation "{target.shown}" not known')
            owner = cur.execute(
                "SELECT tablename FROM pg_indexes WHERE schemaname = %s AND indexname = %s", (target.schema, index)
            ).fetchone()
            if owner is None:
                cur.execute(sql.SQL("CREATE INDEX {} ON {} {}").format(sql.Identifier(index), target.ident, expr))
            elif owner[0] != target.name:
                raise Conflict(f'Error: an index named "{index}" already exists on table "{owner[0]}"')
            if cluster:
                cur.execute(sql.SQL("CLUSTER {} USING {}").format(target.ident, sql.Identifier(index)))
            cur.execute(sql.SQL("ANALYZE {}").format(target.ident))
            mydb_quota.check(cur, settings.mydb_quota_mb, target.schema)
    return "OK"


def flush(conn_or_pools, settings: Settings, user: User) -> str:
    """Drop every table (and view) in the user's MyDB."""
    schema = _require_user(user)
    drops = {"r": "TABLE", "p": "TABLE", "f": "FOREIGN TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW"}
    with _connection(conn_or_pools, user) as conn, _db_errors():
        with conn.transaction(), conn.cursor() as cur:
            rows = cur.execute(
                f"SELECT name, kind FROM starbox_lookup.relations WHERE schema_name = %s AND kind IN {_LISTED}"
                " AND NOT is_partition ORDER BY kind DESC",
                (schema,),
            ).fetchall()
            for name, kind in rows:
                cur.execute(
                    sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(drops[kind]), sql.Identifier(schema, name))
                )
    return "OK"


# --- loading files ---------------------------------------------------------------------------


LINE_MAX = 8 << 20  # the first line of a CSV (pyarrow's block size: no row may be longer)


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"the header has a field longer than {csv.field_size_limit() >> 10} KB (column names are short)"
    return text


def _arrow_width(line: bytes, delimiter: str) -> int:
    import pyarrow.csv as pacsv

    return pacsv.read_csv(
        pa.BufferReader(line),
        read_options=pacsv.ReadOptions(autogenerate_column_names=True),
        parse_options=pacsv.ParseOptions(delimiter=delimiter),
    ).num_columns


class _DelimitedReader(readers.CsvReader):
    """The catalog CsvReader for a staged file that may have no suffix, any delimiter, no
    header line, gzip compression, or column names and types given by the caller."""

    def __init__(
        self,
        path: Path,
        *,
        delimiter: str = ",",
        header: bool = True,
        gz: bool = False,
        names: list[str] | None = None,
        types: dict[str, str] | None = None,
    ):
        readers.Reader.__init__(self, path)
        self.delimiter = self.copy_delimiter = delimiter
        self.gz, self.has_header, self.copy_header = gz, header, header
        first = self._header()
        if names is not None:
            if len(names) != len(first):
                raise StarboxError(f"{path}: the file has {len(first)} columns, the schema {len(names)}")
            self.names = names
        elif header:
            self.names = self._names(first)
        else:
            self.names = [f"col{i + 1}" for i in range(len(first))]
        if types is not None:
            arrow = {n: readers.ARROW_FOR_PG.get(types.get(n, ""), pa.string()) for n in self.names}
        else:
            arrow = self._infer()
        self.types = arrow
        self.columns = [readers.FileColumn(n, arrow[n]) for n in self.names]
        self.total = path.stat().st_size

    def _open(self):
        return gzip.open(self.path, "rb") if self.gz else self.path.open("rb")

    def _header(self) -> list[str]:
        with self._open() as fh:
            raw = fh.readline(LINE_MAX + 1)
        if len(raw) > LINE_MAX:
            raise StarboxError(f"{self.path}: the first line is longer than {LINE_MAX >> 20} MB")
        line = raw.decode("utf-8", "replace").lstrip("\ufeff")
        if not line.strip():
            raise StarboxError(f"{self.path}: the file is empty")
        try:
            return next(csv.reader([line], delimiter=self.delimiter))
        except csv.Error as exc:  # e.g. a field over csv.field_size_limit() (128 KB)
            if not self.has_header:  # values, not names: only their number counts, as pyarrow sees it
                return [""] * _arrow_width(raw, self.delimiter)
            raise StarboxError(f"{self.path}: line 1: {_csv_problem(exc)}") from None

    def _located(self, exc: Exception) -> StarboxError:
        try:
            return super()._located(exc)
        except csv.Error:  # the line finder could not read the file: pyarrow's own words then
            return StarboxError(f"{self.path}: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}")

    def _stream(self, types, counter=None):
        import pyarrow.csv as pacsv

        fh = counter or self._open()
        return pacsv.open_csv(
            fh,
            read_options=pacsv.ReadOptions(
                block_size=8 << 20, column_names=self.names, skip_rows=1 if self.has_header else 0
            ),
            parse_options=pacsv.ParseOptions(delimiter=self.delimiter),
            convert_options=pacsv.ConvertOptions(column_types=types, strings_can_be_null=True),
        )


class _FitsHduReader(readers.FitsReader):
    """FitsReader on a chosen extension (Data Lab's extnum / extname), else the first table."""

    def __init__(self, path: Path, extnum: int | None = None, extname: str | None = None):
        super().__init__(path)
        if extnum is None and not extname:
            return
        from astropy.io import fits

        try:
            hdu = self.hdul[extnum if extnum is not None else extname]
        except (IndexError, KeyError):
            which = f"number {extnum}" if extnum is not None else f'"{extname}"'
            raise StarboxError(f"{path}: the FITS file has no extension {which}") from None
        if not isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)):
            raise StarboxError(f"{path}: FITS extension {extnum if extnum is not None else extname} is not a table")
        self.hdu = hdu
        self.raw_names = list(hdu.columns.names)
        self.names = self._names(self.raw_names)
        self.total = hdu.header.get("NAXIS2", 0)
        first = self._chunk(0, min(1, self.total)) if self.total else None
        self.columns = [
            readers.FileColumn(n, first.column(i).type if first is not None else pa.float64(), unit=c.unit or None)
            for i, (n, c) in enumerate(zip(self.names, hdu.columns))
        ]


def _sniff(path: Path) -> tuple[str, bool]:
    """(kind, gzipped) from the file's first bytes: fits, parquet, votable or text."""
    with path.open("rb") as fh:
        head = fh.read(1024)
    gz = head[:2] == b"\x1f\x8b"
    if gz:
        try:
            with gzip.open(path, "rb") as fh:
                head = fh.read(1024)
        except (OSError, EOFError):
            raise StarboxError(f"{path}: not a readable gzip file") from None
    if head.startswith(b"SIMPLE  ="):
        return "fits", gz
    if head.startswith(b"PAR1"):
        return "parquet", gz
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<?xml") or text[:8].upper() == b"<VOTABLE":
        return "votable", gz
    if b"\x00" in head:
        raise StarboxError(f"{path}: not a CSV, TSV, FITS, VOTable or Parquet file")
    return "text", gz


def parse_delimiter(raw: str | None) -> str:
    value = "," if raw in (None, "", "None") else raw
    value = {"\\t": "\t", "tab": "\t", "TAB": "\t", "space": " "}.get(value, value)
    if len(value) != 1 or value in '\r\n"':
        raise StarboxError(f"Error: the delimiter must be one character, not {raw!r}")
    return value


def _delimiter(raw: str | None, path: Path, display: str, gz: bool) -> str:
    """The delimiter asked for; a TSV is recognised by its name or a header with tabs only."""
    value = parse_delimiter(raw)
    lower = display.lower()
    if value == "," and lower.endswith((".tsv", ".tsv.gz")):
        return "\t"
    if value == "," and not lower.endswith((".csv", ".csv.gz")):
        with gzip.open(path, "rb") if gz else path.open("rb") as fh:
            first = fh.readline(1 << 16)
        if b"\t" in first and b"," not in first:
            return "\t"
    return value


def _open_reader(
    path: Path,
    display: str,
    *,
    delimiter: str | None = ",",
    header: bool = True,
    extnum: int | None = None,
    extname: str | None = None,
    names: list[str] | None = None,
    infer: bool = True,
) -> readers.Reader:
    kind, gz = _sniff(path)
    if kind == "fits":
        return _FitsHduReader(path, extnum, extname)
    if gz and kind != "text":
        raise StarboxError(f"{path}: a gzip-compressed {kind} file; send it uncompressed")
    if kind == "parquet":
        return readers.ParquetReader(path)
    if kind == "votable":
        return readers.VotableReader(path)
    types: dict[str, str] | None = None if infer and names is None else {}
    return _DelimitedReader(
        path, delimiter=_delimiter(delimiter, path, display, gz), header=header, gz=gz, names=names, types=types
    )


@contextmanager
def _file_errors(path: Path | None, display: str):
    """Reader errors name the server's path: say the user's name for the file instead."""
    try:
        yield
    except psycopg.Error:
        raise
    except StarboxError as exc:
        text = str(exc)
        if path is not None:
            text = text.replace(str(path), display)
        if not text.startswith(("Error", "relation ")):
            text = "Error: " + text
        raise type(exc)(text) from None
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError, IndexError, EOFError, UnicodeError) as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if path is not None:
            detail = detail.replace(str(path), display)
        raise StarboxError(f"Error: {display}: cannot read the file: {detail}") from None


def staged_file(settings: Settings, user: User, filename: str) -> Path:
    """A file that POST /storage/xfer staged for this user (storage_home.staged_name's rule)."""
    path = storage_home.staged_path(settings, user.name, filename)
    name = path.name
    if not path.is_file() or path.resolve().parent != path.parent.resolve():
        raise NotFound(f'Error: no staged file "{name}": upload it first (POST /storage/xfer)')
    return path


def _fetch_url(settings: Settings, user: User, url: str, folder: Path) -> Path:
    """Stream an http(s) URL into a file in `folder` through starbox.outbound (which refuses
    internal addresses, checks every redirect and stops at max_upload_mb)."""
    return outbound.fetch_to(
        settings,
        url,
        folder / "download",
        limit=settings.max_upload_mb * 1024 * 1024,
        too_large=f"Error: {url} is larger than the {settings.max_upload_mb} MB limit",
        deadline=FETCH_DEADLINE,
    )


@contextmanager
def source_file(settings: Settings, user: User, filename: str, consume: bool = True):
    """(path, shown name) of what `filename` names: a staged upload, an http(s) URL (fetched into a
    temporary file), or a storage URI such as vos://x.csv or <user>://public/x.csv. A staged
    upload is removed after a successful load when `consume`."""
    _require_user(user)
    name = (filename or "").strip()
    if not name or name == "None":
        raise StarboxError("Error: no file given (filename=)")
    scheme, sep, _ = name.partition("://")
    if sep and scheme.lower() in ("http", "https"):
        parent = storage_home.staging_dir(settings, user.name)
        parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=storage_home.RESERVED_PREFIX + "fetch-", dir=parent))
        try:
            yield _fetch_url(settings, user, name, folder), name
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return
    if sep:
        if scheme.lower() == "mydb":
            raise StarboxError(f'Error: cannot import from "{name}": use /query/copy for MyDB tables')
        path = Path(resolve(settings, user, name))
        if path.is_dir():
            raise StarboxError(f'Error: "{name}" is a folder, not a file')
        if not path.is_file():
            raise NotFound(f'Error: "{name}": A Node does not exist with the requested URI.')
        yield path, name
        return
    path = staged_file(settings, user, name)
    yield path, name
    if consume:
        path.unlink(missing_ok=True)


def _copy_in(
    cur, target: Table, reader: readers.Reader, file_names: list[str], columns: list[str], path: Path, display: str
) -> int:
    """Stream the reader's rows into COPY; returns the rows copied."""
    options = sql.SQL("FORMAT csv, HEADER {}, DELIMITER {}").format(
        sql.SQL("true" if reader.copy_header else "false"), sql.Literal(reader.copy_delimiter)
    )
    statement = sql.SQL("COPY {} ({}) FROM STDIN ({})").format(
        target.ident, sql.SQL(", ").join(map(sql.Identifier, columns)), options
    )
    try:
        with cur.copy(statement) as copy:
            for chunk in reader.copy_chunks(file_names):
                copy.write(chunk)
    except (
        psycopg.errors.DataError,
        psycopg.errors.BadCopyFileFormat,
        psycopg.errors.IntegrityConstraintViolation,
    ) as exc:
        raise StarboxError("Error: " + str(copy_error(exc, Path(display), reader.copy_line_is))) from None
    return cur.rowcount


def ingest(
    conn_or_pools,
    settings: Settings,
    user: User,
    table: str,
    filename: str,
    csv_header: bool = True,
    delimiter: str | None = ",",
) -> str:
    """Append the rows of a file (CSV as Data Lab's mydb_insert sends it; other formats too) to an
    existing table, in one transaction. With a header, columns are matched by name."""
    target = table_name(user, table)
    parse_delimiter(delimiter)
    with source_file(settings, user, filename) as (path, display):
        with _file_errors(path, display):
            reader = _open_reader(path, display, delimiter=delimiter, header=csv_header, infer=False)
        with _connection(conn_or_pools, user) as conn, _db_errors(target.shown):
            with conn.transaction(), conn.cursor() as cur:
                if not _relation_exists(cur, target):
                    raise NotFound(f'relation "{target.shown}" not known')
                file_names = [c.name for c in reader.columns]
                if csv_header or not isinstance(reader, _DelimitedReader):
                    columns = reader.copy_columns(file_names)
                else:
                    columns = _table_columns(cur, target)[: len(file_names)]
                    if len(columns) < len(file_names):
                        raise StarboxError(
                            f"Error: {display} has {len(file_names)} columns, table {target.shown} only {len(columns)}"
                        )
                with _file_errors(path, display):
                    _copy_in(cur, target, reader, file_names, columns, path, display)
                mydb_quota.check(cur, settings.mydb_quota_mb, target.schema)
    return "OK"


def _table_columns(cur, target: Table) -> list[str]:
    return [
        r[0]
        for r in cur.execute(
            "SELECT name FROM starbox_lookup.columns WHERE schema_name = %s AND table_name = %s ORDER BY position",
            (target.schema, target.name),
        )
    ]


def import_table(
    conn_or_pools,
    settings: Settings,
    user: User,
    table: str,
    filename: str,
    *,
    delimiter: str | None = ",",
    append: bool = False,
    csv_header: bool = True,
    schema_def: str | None = None,
    extnum: int | None = None,
    extname: str | None = None,
    drop: bool = True,
) -> str:
    """A table from a file: CSV/TSV (any delimiter, gzip), FITS, VOTable or Parquet, recognised by
    content. Column types are inferred as the catalog loader does, unless schema_def gives
    `col,type` lines (matched to the file's columns by position). append=True adds the rows to
    an existing table; otherwise an existing table is replaced (drop=False refuses instead).
    One transaction: a failure leaves no new table, and an old one as it was."""
    target = table_name(user, table)
    given = parse_schema(schema_def) if schema_def and schema_def.strip() not in ("", "None") else None
    parse_delimiter(delimiter)
    with source_file(settings, user, filename) as (path, display):
        with _file_errors(path, display):
            reader = _open_reader(
                path,
                display,
                delimiter=delimiter,
                header=csv_header,
                extnum=extnum,
                extname=extname,
                names=[n for n, _ in given] if given else None,
            )
            file_names = [c.name for c in reader.columns]
            if given:
                if len(given) != len(file_names):
                    raise StarboxError(f"{path}: the file has {len(file_names)} columns, schema_def {len(given)}")
                columns = given
                copy_columns = [n for n, _ in given]
            else:
                columns = [(c.name, readers.pg_type(c.type, c.name, path)) for c in reader.columns]
                copy_columns = reader.copy_columns(file_names)
        with _connection(conn_or_pools, user) as conn, _db_errors(target.shown):
            with conn.transaction(), conn.cursor() as cur:
                exists = _relation_exists(cur, target)
                if exists and not append and not drop:
                    raise Conflict(f'Error: table "{target.shown}" already exists')
                if not (exists and append):
                    cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(target.ident))
                    cur.execute(sql.SQL("CREATE TABLE {} ({})").format(target.ident, _coldefs(columns)))
                    stamp_created(cur, target.schema, target.name)
                with _file_errors(path, display):
                    _copy_in(cur, target, reader, file_names, copy_columns, path, display)
                cur.execute(sql.SQL("ANALYZE {}").format(target.ident))
                mydb_quota.check(cur, settings.mydb_quota_mb, target.schema)
    return "OK"
