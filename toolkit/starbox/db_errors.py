"""The one translation of database errors into user messages: one line, the right status, the
same words for the same failure wherever it happens (a query, a MyDB call, TAP, cone search)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import psycopg

from starbox.errors import Conflict, Forbidden, NotFound, StarboxError, Unavailable

LOST = "Error: lost the connection to the database; try again in a moment"


def primary(exc: psycopg.Error) -> str:
    """PostgreSQL's own first line (with its hint), or the exception's name."""
    diag = exc.diag
    text = str(exc).strip()
    message = (diag.message_primary if diag else None) or (text.splitlines()[0] if text else type(exc).__name__)
    if diag and diag.message_hint:
        message += f" (hint: {diag.message_hint})"
    return message


def user_error(exc: psycopg.Error, *, timeout_s: float | None = None, shown: str | None = None) -> StarboxError:
    """`exc` as a StarboxError. `timeout_s` says the time limit in the message; `shown` names
    the table the caller meant, for a 404 about it."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        limit = f" of {timeout_s:g} s" if timeout_s else ""
        return StarboxError(f"Error: the query was stopped: it ran past its time limit{limit}")
    if shown and isinstance(exc, (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName)):
        return NotFound(f'relation "{shown}" not known')
    if isinstance(exc, (psycopg.errors.DuplicateTable, psycopg.errors.DuplicateObject)):
        return Conflict(f"Error: {primary(exc)}")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return Forbidden(f"Error: {primary(exc)}")
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:  # the connection itself failed
        return Unavailable(LOST)
    return StarboxError(f"Error: {primary(exc)}")


def message_of(exc: BaseException) -> str:
    """The user's line for any failure: ours as it is, the database's translated, the rest named."""
    if isinstance(exc, StarboxError):
        return str(exc)
    if isinstance(exc, psycopg.Error):
        return str(user_error(exc))
    return f"Error: internal error ({type(exc).__name__})"


@contextmanager
def translated(*, shown: str | None = None, timeout_s: float | None = None) -> Iterator[None]:
    """Raise database errors in the block as user_error's StarboxError."""
    try:
        yield
    except psycopg.Error as exc:
        raise user_error(exc, shown=shown, timeout_s=timeout_s) from None
