"""From what a user typed to the SQL PostgreSQL runs: ADQL translation, `mydb://t` rewriting,
and the statement guard (starbox.query.guard: one statement, of a kind this caller may run)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from starbox.accounts import User
from starbox.errors import StarboxError, Unauthorized
from starbox.query import guard

MYDB_URI = re.compile(r"mydb://([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Prepared:
    sql: str
    is_query: bool  # returns rows (SELECT, WITH, VALUES, TABLE), as opposed to a statement


def rewrite_mydb(text: str, user: User) -> str:
    """`mydb://t` → the user's MyDB schema, `mydb_<user>.t`."""
    if not MYDB_URI.search(text):
        return text
    if user.anonymous:
        raise Unauthorized("Error: mydb:// tables need a logged-in user")
    return MYDB_URI.sub(lambda m: f'{user.schema}."{m.group(1).lower()}"', text)


def translate_adql(adql: str) -> str:
    """ADQL → PostgreSQL with queryparser (TOP, geometry functions on pgsphere), bounded in size
    and time and limited to ADQL's functions (starbox.adql_translate)."""
    from starbox import adql_translate

    sql = adql_translate.translate(adql)
    adql_translate.check_functions(sql, placeholders=True)  # starbox.tap.adql checks again, restored
    return sql


def prepare(user: User, sql: str | None = None, adql: str | None = None) -> Prepared:
    """SQL, or one SELECT of ADQL, checked by the guard. The whole of ADQL (WITH, set operators,
    CAST, the index rewrites) is starbox.tap.adql's, built on this; the Data Lab API and its jobs
    come in through starbox.tap.query.prepare_data_lab."""
    if adql and adql.strip():
        text = translate_adql(rewrite_mydb(adql, user))
    elif sql and sql.strip():
        text = rewrite_mydb(sql, user)
    else:
        raise StarboxError("Error: no query given: pass sql= or adql=")
    # Parsed after rewriting and translation: what is checked is exactly what runs.
    checked = guard.check(text, anonymous=user.anonymous)
    return Prepared(checked.sql, checked.is_query)
