"""Running a prepared query on the user's own connection and streaming the result.

Every result leaves PostgreSQL through `COPY (query) TO STDOUT (FORMAT csv)`; text formats
pass it through, typed formats convert it with Arrow (see formats.py). The first block is read
before anything is sent, so SQL errors, timeouts and the row cap answer with a proper status;
a result the planner expects near the row cap is counted first (_count_first). A failure later
in a long stream aborts the response instead of ending it as if it were whole; text formats end
with the message as their last line first (VOTable and FITS are built whole, so they never start).
"""

from __future__ import annotations

import csv
import io
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Callable, Iterator

import psycopg
from psycopg import sql as pgsql

from starbox import db_errors, mydb_quota
from starbox import settings as settings_mod
from starbox.errors import StarboxError, TooLarge
from starbox.mydb import stamp_created
from starbox.query import formats
from starbox.query.prepare import Prepared

BLOCK = 1 << 20  # bytes per chunk handed to the socket


@dataclass(frozen=True)
class Limits:
    timeout_s: int
    row_cap: int
    # Largest result row (bytes of its text); callers that pass none get the setting.
    max_row_bytes: int = field(default_factory=lambda: settings_mod.get().max_row_mb << 20)
    mydb_quota_mb: int = field(default_factory=lambda: settings_mod.get().mydb_quota_mb)


# A row over max_row_bytes makes PostgreSQL fail with this text in the error (a cast of the
# message to int: plain SQL, no function of ours needed), so the row never leaves the server.
ROW_TOO_LARGE = "starbox: result row too large: "
# Internal (possibly compressed) sizes below this fraction of the limit cannot hide an oversized
# row (lz4 and pglz compress at most ~255:1), so only rows above it pay for measuring their text.
_COMPRESSION = 300


def _row_bounded(query: str, limits: Limits) -> pgsql.Composed:
    """The query with every row's size checked inside PostgreSQL: COPY hands libpq whole rows, so
    a 200 MB row would be in the service's memory before any check of ours could see it."""
    cheap = max(1, limits.max_row_bytes // _COMPRESSION)
    return pgsql.SQL(
        "SELECT * FROM (\n{q}\n) _r WHERE CASE WHEN pg_column_size(_r.*) <= {cheap} THEN true"
        " WHEN octet_length(_r::text) <= {limit} THEN true"
        " ELSE ({msg} || pg_column_size(_r.*))::int IS NULL END"
    ).format(
        q=pgsql.SQL(query),
        cheap=pgsql.Literal(cheap),
        limit=pgsql.Literal(limits.max_row_bytes),
        msg=pgsql.Literal(ROW_TOO_LARGE),
    )


def _row_too_large(limits: Limits, size: str = "") -> TooLarge:
    mb = limits.max_row_bytes / (1 << 20)
    # The size in PostgreSQL's message is the internal one (measuring the text again costs as much
    # as the first time); a compressed row's is smaller than the limit: then no size is shown.
    size = f" ({int(size) / (1 << 20):.1f} MB)" if size.isdigit() and int(size) > limits.max_row_bytes else ""
    return TooLarge(
        f"Error: a result row{size} is larger than the {mb:g} MB a row may have here "
        f"(STARBOX_MAX_ROW_MB); select fewer or shorter columns"
    )


def db_error(exc: psycopg.Error, limits: Limits | None = None) -> StarboxError:
    """A psycopg error as a one-line user message with the right status."""
    diag = exc.diag
    if (
        limits
        and isinstance(exc, psycopg.errors.InvalidTextRepresentation)
        and ROW_TOO_LARGE in str(diag.message_primary)
    ):
        return _row_too_large(limits, str(diag.message_primary).split(ROW_TOO_LARGE)[1].rstrip('"'))
    return db_errors.user_error(exc, timeout_s=limits.timeout_s if limits else None)


def _begin(conn: psycopg.Connection, limits: Limits) -> None:
    # Clients use the same number as their read timeout: stop the query a little earlier, so the
    # user gets our message rather than a client-side timeout.
    ms = int(limits.timeout_s * 1000 - min(1000, limits.timeout_s * 250))
    conn.execute(pgsql.SQL("SET LOCAL statement_timeout = {}").format(pgsql.Literal(f"{ms}ms")))
    # q3c plans each cone in ~4 ms unless plans are generic; small interactive cones gain most.
    conn.execute("SET LOCAL work_mem = '64MB'")


def describe(conn: psycopg.Connection, prepared: Prepared) -> list[formats.Column]:
    cur = conn.execute(pgsql.SQL("SELECT * FROM (\n{}\n) _q LIMIT 0").format(pgsql.SQL(prepared.sql)))
    res = cur.pgresult
    return [formats.Column(d.name, d.type_code, res.ftable(i), res.ftablecol(i)) for i, d in enumerate(cur.description)]


def _csv_blocks(conn: psycopg.Connection, prepared: Prepared, delimiter: str, limits: Limits) -> Iterator[bytes]:
    """The result as CSV text from COPY, in ~1 MiB blocks, refusing more than row_cap rows."""
    copy_sql = pgsql.SQL(
        "COPY (SELECT * FROM ({}) _q LIMIT {}) TO STDOUT (FORMAT csv, HEADER true, DELIMITER {})"
    ).format(_row_bounded(prepared.sql, limits), pgsql.Literal(limits.row_cap + 1), pgsql.Literal(delimiter))
    lines = 0
    buf = bytearray()  # copy each row out at once: holding on to libpq's row buffers is 3x slower
    with conn.cursor().copy(copy_sql) as copy:
        for row in copy:
            if len(row) > limits.max_row_bytes * 2:  # the text check's margin (CSV quoting)
                raise _row_too_large(limits, str(len(row)))
            buf += row
            if len(buf) >= BLOCK:
                block = bytes(buf)
                lines += block.count(b"\n")
                _check_cap(lines, limits)
                yield block
                buf = bytearray()
    block = bytes(buf)
    lines += block.count(b"\n")
    _check_cap(lines, limits)
    yield block


def _check_cap(lines: int, limits: Limits) -> None:
    if lines - 1 > limits.row_cap:
        raise _over_cap(limits)


def _over_cap(limits: Limits) -> TooLarge:
    return TooLarge(
        f"Error: the result has more than {limits.row_cap:,} rows, the row cap of this service; "
        f"narrow the query or add LIMIT"
    )


def _count_first(conn: psycopg.Connection, prepared: Prepared, limits: Limits) -> None:
    """Refuse, before the first byte, a result the planner expects near or over the row cap and
    that really is over it: a bounded count (no output is formed, so it costs a fraction of
    sending those rows). Results expected well under the cap stream at once; if the estimate was
    wrong, the stream ends with an error marker instead (see _generate)."""
    bounded = pgsql.SQL("SELECT * FROM (\n{}\n) _q LIMIT {}").format(
        pgsql.SQL(prepared.sql), pgsql.Literal(limits.row_cap + 1)
    )
    plan = conn.execute(pgsql.SQL("EXPLAIN (FORMAT JSON) {}").format(bounded)).fetchone()[0]
    # (A query that writes, WITH ... INSERT, cannot run inside this wrapper: PostgreSQL refuses it.)
    if plan[0]["Plan"]["Plan Rows"] * 2 <= limits.row_cap:
        return
    count = conn.execute(pgsql.SQL("SELECT count(*) FROM ({}) _c").format(bounded)).fetchone()[0]
    if count > limits.row_cap:
        raise _over_cap(limits)


def _rows_as_text(cur: psycopg.Cursor, delimiter: str) -> bytes:
    """The few rows a statement returns (EXPLAIN's plan; RETURNING is refused by the guard)."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([d.name for d in cur.description])
    writer.writerows(cur.fetchall())
    return out.getvalue().encode()


def _generate(
    open_conn: Callable[[], AbstractContextManager], prepared: Prepared, fmt: formats.Format, limits: Limits
) -> Iterator[bytes]:
    with open_conn() as conn:
        try:
            with conn.transaction():
                _begin(conn, limits)
                if not prepared.is_query:
                    cur = conn.execute(pgsql.SQL(prepared.sql))
                    mydb_quota.check(conn, limits.mydb_quota_mb)  # CREATE TABLE AS, INSERT...: may grow MyDB
                    if cur.description:  # EXPLAIN: its plan, as delimited text
                        yield _rows_as_text(cur, fmt.delimiter or ",")
                    else:
                        yield f"{cur.statusmessage or 'OK'}\n".encode()
                    return
                _count_first(conn, prepared, limits)
                if fmt.delimiter is not None:
                    sent = False
                    try:
                        for block in _csv_blocks(conn, prepared, fmt.delimiter, limits):
                            yield block
                            sent = True
                    except (StarboxError, psycopg.Error) as exc:
                        # Rows already went out: end the text with the message as its last line
                        # (blocks end at a row's end), then abort, so no client takes it as whole.
                        err = db_error(exc, limits) if isinstance(exc, psycopg.Error) else exc
                        if sent:
                            yield f"{err}\n".encode()
                        raise err from None
                    return
                columns = describe(conn, prepared)
                csv_blocks = _csv_blocks(conn, prepared, ",", limits)
                yield from fmt.encode(columns, formats.batches_from_csv(columns, csv_blocks))
        except psycopg.Error as exc:
            raise db_error(exc, limits) from None
        except GeneratorExit:
            conn.cancel_safe()  # the client went away: stop the query instead of draining it
            raise


def stream(
    open_conn: Callable[[], AbstractContextManager],
    prepared: Prepared,
    fmt_name: str | formats.Format | None,
    limits: Limits,
) -> tuple[formats.Format, Iterator[bytes]]:
    """(format, chunks). The first chunk is already computed, so errors raise here.
    A Format object instead of a name brings its own encoder (TAP's VOTable with metadata)."""
    fmt = fmt_name if isinstance(fmt_name, formats.Format) else formats.get(fmt_name)
    gen = _generate(open_conn, prepared, fmt, limits)
    try:
        first = next(gen)
    except StopIteration:
        first = b""
    return fmt, Chunks(first, gen)


class Chunks:
    """A result's chunks: iterate them; close() stops the query at once (a client went away)
    and gives its connection back, instead of whenever the garbage collector gets to it."""

    def __init__(self, first: bytes, rest: Iterator[bytes]):
        self._first, self._rest = first, rest

    def __iter__(self) -> Iterator[bytes]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        yield from self._rest

    def close(self) -> None:
        self._rest.close()


def run_to_mydb(
    conn: psycopg.Connection, prepared: Prepared, schema: str, table: str, drop: bool, limits: Limits
) -> int:
    """CREATE TABLE <user schema>.<table> AS <query>, replacing it when drop; returns rows."""
    if not prepared.is_query:
        raise StarboxError("Error: out=mydb:// needs a query that returns rows")
    target = pgsql.Identifier(schema, table)
    try:
        with conn.transaction():
            _begin(conn, limits)
            if drop:
                conn.execute(pgsql.SQL("DROP TABLE IF EXISTS {}").format(target))
            cur = conn.execute(
                pgsql.SQL("CREATE TABLE {} AS SELECT * FROM (\n{}\n) _q").format(target, pgsql.SQL(prepared.sql))
            )
            rows = cur.rowcount
            mydb_quota.check(conn, limits.mydb_quota_mb, schema)
            stamp_created(conn.cursor(), schema, table)
            return rows
    except psycopg.errors.DuplicateTable:
        raise StarboxError(f"Error: table {table} already exists in MyDB; pass drop=True to replace it") from None
    except psycopg.Error as exc:
        raise db_error(exc, limits) from None
