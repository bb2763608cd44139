"""Which SQL a caller may run, decided on PostgreSQL's own parse tree (pglast, libpg_query).

A regex cannot know PostgreSQL's lexer (`E'\\''` strings, dollar quotes, nested comments), so a
`;` could smuggle a COMMIT past `SET LOCAL statement_timeout`. Here the text is parsed by the
same grammar the server uses; exactly one statement passes, and only of a kind a user needs:

- everyone: queries (SELECT, WITH, VALUES, TABLE) and EXPLAIN of an allowed statement;
- logged-in users also: INSERT, UPDATE, DELETE, MERGE, and DDL on tables (CREATE TABLE [AS],
  CREATE VIEW, CREATE INDEX, ALTER TABLE, DROP, TRUNCATE, COMMENT, ANALYZE ...). Which schema
  they touch is PostgreSQL's business: a user role may create only in its own MyDB schema.

Everything else (ALTER ROLE, SET/RESET, transaction control, COPY, DO, CREATE FUNCTION, GRANT,
LISTEN, LOCK, VACUUM ...) and every set_config() call is refused with a 403 naming the kind.
Privileges stay the defence (DESIGN.md); this closes the statements privileges cannot: a role
may always change its own password and defaults, and a session its own settings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pglast.parser import ParseError, parse_sql_json

from starbox.errors import Forbidden, StarboxError

QUERY_KINDS = "SELECT, WITH, VALUES, TABLE, EXPLAIN"
USER_KINDS = f"{QUERY_KINDS}, INSERT, UPDATE, DELETE, and DDL on your MyDB tables"

# libpg_query's JSON, not pglast's Python tree: building the tree costs 25 times the parse
# (700 ms for a 30 kB select list), which a request body of a megabyte would turn into a CPU burner.
# A node is {"SelectStmt": {fields}}; enums are their names; false and 0 fields are left out.

# Objects of a user's MyDB schema that user DDL may name.
_TABLE_LIKE = {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_INDEX", "OBJECT_SEQUENCE"}
_COMMENTABLE = _TABLE_LIKE | {"OBJECT_COLUMN", "OBJECT_TABCONSTRAINT"}
_RENAMEABLE = _COMMENTABLE
_ALWAYS = {
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "MergeStmt",
    "CreateStmt",
    "ViewStmt",
    "IndexStmt",
    "TruncateStmt",
    "CreateSeqStmt",
    "AlterSeqStmt",
    "RefreshMatViewStmt",
    "SelectStmt",
}
_BY_OBJECT = {
    "CreateTableAsStmt": ("objtype", {"OBJECT_TABLE", "OBJECT_MATVIEW"}),
    "DropStmt": ("removeType", _TABLE_LIKE),
    "AlterTableStmt": ("objtype", _TABLE_LIKE),
    "RenameStmt": ("renameType", _RENAMEABLE),
    "AlterObjectSchemaStmt": ("objectType", _TABLE_LIKE),
    "CommentStmt": ("objtype", _COMMENTABLE),
}
_WRITES = {"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"}

# Calls refused wherever they appear (a CHECK, a DEFAULT, a subquery): they change session
# settings, which the service sets per query (the statement timeout among them).
_REFUSED_CALLS = {"set_config"}
# Views whose UPDATE is a SET in disguise (pg_settings' rule calls set_config).
_REFUSED_TARGETS = {"pg_settings"}


@dataclass(frozen=True)
class Checked:
    sql: str  # the one statement's text, without a trailing ';' or comments around it
    is_query: bool  # a query returning rows that can be wrapped (SELECT * FROM (...) _q)


def check(text: str, anonymous: bool) -> Checked:
    """The one statement in `text`, if this caller may run it; else a clear refusal."""
    try:
        statements = json.loads(parse_sql_json(text))["stmts"]
    except ParseError as exc:  # libpg_query's message is PostgreSQL's own
        message, index = (tuple(exc.args) + (None, None))[:2]
        where = f" (at character {index + 1})" if isinstance(index, int) else ""
        raise StarboxError(f"Error: {message}{where}") from None
    except RecursionError:  # json.loads of a tree nested thousands deep
        raise StarboxError("Error: the query is nested too deeply") from None
    if not statements:
        raise StarboxError("Error: no SQL statement in the query (only comments?)")
    if len(statements) > 1:
        kinds = ", ".join(kind(raw["stmt"]) for raw in statements[:4]) + (", ..." if len(statements) > 4 else "")
        raise Forbidden(
            f"Error: multiple statements are not allowed here; one statement per query, "
            f"please (found {len(statements)}: {kinds})"
        )
    raw = statements[0]
    stmt = raw["stmt"]
    _check_statement(stmt, anonymous)
    _check_tree(stmt, anonymous)
    # libpg_query's locations count bytes
    data = text.encode()
    start = raw.get("stmt_location", 0)
    end = start + raw["stmt_len"] if raw.get("stmt_len") else len(data)
    sql = data[start:end].decode().strip()
    name, fields = _node(stmt)
    return Checked(sql, name == "SelectStmt" and "intoClause" not in fields)


def _node(node: dict) -> tuple[str, dict]:
    ((name, fields),) = node.items()
    return name, fields


def _check_statement(stmt: dict, anonymous: bool) -> None:
    name, fields = _node(stmt)
    if name == "ExplainStmt":
        _check_statement(fields["query"], anonymous)  # EXPLAIN ANALYZE runs it
        return
    if name == "SelectStmt" and "intoClause" not in fields:
        return
    if name in _WRITES and (fields.get("returningClause") or fields.get("returningList")):
        # Its rows would come back whole, outside the row cap and the row-size bound.
        raise StarboxError(
            f"Error: {kind(stmt)} ... RETURNING is not supported here; run the {kind(stmt)}, "
            f"then SELECT the rows you want"
        )
    if _user_allowed(name, fields):
        if anonymous:
            raise Forbidden(
                f"Error: {kind(stmt)} statements are not allowed here; anonymous callers "
                f"may run queries only ({QUERY_KINDS}): log in to write to your MyDB"
            )
        return
    raise Forbidden(
        f"Error: {kind(stmt)} statements are not allowed here; Starbox runs one statement per "
        f"request, of these kinds: {USER_KINDS}"
    )


def _user_allowed(name: str, fields: dict) -> bool:
    if name in _ALWAYS:
        return True
    if name in _BY_OBJECT:
        field, allowed = _BY_OBJECT[name]
        return fields.get(field) in allowed
    if name == "VacuumStmt":
        return not fields.get("is_vacuumcmd")  # ANALYZE: statistics for the planner; VACUUM is the admin's
    return False


def _check_tree(stmt: dict, anonymous: bool) -> None:
    """Refusals anywhere in the tree: settings calls, pg_settings as a write target and,
    for anonymous callers, data-modifying statements inside a query (WITH ... DELETE)."""
    todo: list[Any] = [stmt]
    while todo:  # iterative: deep trees do not recurse
        item = todo.pop()
        if isinstance(item, list):
            todo.extend(item)
            continue
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key == "FuncCall":
                func = value["funcname"][-1]["String"]["sval"].lower()
                if func in _REFUSED_CALLS:
                    raise Forbidden(
                        f"Error: {func}() calls are not allowed here; the service sets the "
                        f"session's settings for each query (read them with current_setting())"
                    )
            elif key in _WRITES:
                relation = value.get("relation", {})
                target = relation.get("relname", "").lower()
                if target in _REFUSED_TARGETS and relation.get("schemaname", "pg_catalog").lower() == "pg_catalog":
                    raise Forbidden(
                        f"Error: changing {target} is not allowed here; it sets the session's "
                        f"settings, which the service sets for each query"
                    )
                if anonymous:
                    raise Forbidden(
                        f"Error: {kind({key: value})} statements are not allowed here; anonymous "
                        f"callers may run queries only ({QUERY_KINDS}): log in to write to your MyDB"
                    )
            if isinstance(value, (dict, list)):
                todo.append(value)


_NAMES = {
    "AlterRoleSetStmt": "ALTER ROLE",
    "AlterRoleStmt": "ALTER ROLE",
    "CreateRoleStmt": "CREATE ROLE",
    "DropRoleStmt": "DROP ROLE",
    "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE",
    "AlterDatabaseSetStmt": "ALTER DATABASE",
    "CreateStmt": "CREATE TABLE",
    "ViewStmt": "CREATE VIEW",
    "IndexStmt": "CREATE INDEX",
    "CreateSeqStmt": "CREATE SEQUENCE",
    "AlterSeqStmt": "ALTER SEQUENCE",
    "CreateTrigStmt": "CREATE TRIGGER",
    "RuleStmt": "CREATE RULE",
    "CreatePLangStmt": "CREATE LANGUAGE",
    "DeclareCursorStmt": "DECLARE CURSOR",
    "ClosePortalStmt": "CLOSE",
    "VariableShowStmt": "SHOW",
    "CheckPointStmt": "CHECKPOINT",
    "ExecuteStmt": "EXECUTE",
    "PrepareStmt": "PREPARE",
    "DeallocateStmt": "DEALLOCATE",
    "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
    "DropOwnedStmt": "DROP OWNED",
    "ReassignOwnedStmt": "REASSIGN OWNED",
    "CreateStatsStmt": "CREATE STATISTICS",
    "CreateEventTrigStmt": "CREATE EVENT TRIGGER",
    "SecLabelStmt": "SECURITY LABEL",
    "ConstraintsSetStmt": "SET CONSTRAINTS",
    "CompositeTypeStmt": "CREATE TYPE",
    "CreateEnumStmt": "CREATE TYPE",
    "CreateRangeStmt": "CREATE TYPE",
    "AlterFunctionStmt": "ALTER FUNCTION",
    "AlterOwnerStmt": "ALTER ... OWNER",
    "ExplainStmt": "EXPLAIN",
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
}
_TRANSACTIONS = {
    "TRANS_STMT_BEGIN": "BEGIN",
    "TRANS_STMT_START": "START TRANSACTION",
    "TRANS_STMT_COMMIT": "COMMIT",
    "TRANS_STMT_ROLLBACK": "ROLLBACK",
    "TRANS_STMT_SAVEPOINT": "SAVEPOINT",
    "TRANS_STMT_RELEASE": "RELEASE SAVEPOINT",
    "TRANS_STMT_ROLLBACK_TO": "ROLLBACK TO SAVEPOINT",
    "TRANS_STMT_PREPARE": "PREPARE TRANSACTION",
    "TRANS_STMT_COMMIT_PREPARED": "COMMIT PREPARED",
    "TRANS_STMT_ROLLBACK_PREPARED": "ROLLBACK PREPARED",
}
_SPECIAL_SETTINGS = {
    "role": "ROLE",
    "session_authorization": "SESSION AUTHORIZATION",
    "transaction": "TRANSACTION",
    "session characteristics": "SESSION CHARACTERISTICS",
}


def _object(objtype: str | None) -> str:
    """OBJECT_MATVIEW -> 'MATERIALIZED VIEW'."""
    name = (objtype or "OBJECT_").removeprefix("OBJECT_")
    return {
        "MATVIEW": "MATERIALIZED VIEW",
        "FDW": "FOREIGN DATA WRAPPER",
        "TABCONSTRAINT": "CONSTRAINT",
        "STATISTIC_EXT": "STATISTICS",
        "LARGEOBJECT": "LARGE OBJECT",
    }.get(name, name.replace("_", " "))


def kind(stmt: dict) -> str:
    """The statement's kind as a user would name it: 'ALTER ROLE', 'SET ROLE', 'COMMIT', 'DROP FUNCTION'."""
    cls, f = _node(stmt)
    if cls == "SelectStmt":
        return "SELECT INTO" if "intoClause" in f else "SELECT"
    if cls == "VariableSetStmt":
        if f.get("kind") == "VAR_RESET_ALL":
            return "RESET ALL"
        verb = "RESET" if f.get("kind") == "VAR_RESET" else "SET"
        what = _SPECIAL_SETTINGS.get(str(f.get("name") or "").lower())
        return f"{verb} {what}" if what else verb
    if cls == "TransactionStmt":
        return _TRANSACTIONS.get(str(f.get("kind")), "transaction control")
    if cls == "GrantStmt":
        return "GRANT" if f.get("is_grant") else "REVOKE"
    if cls == "GrantRoleStmt":
        return "GRANT ROLE" if f.get("is_grant") else "REVOKE ROLE"
    if cls == "CreateFunctionStmt":
        return "CREATE PROCEDURE" if f.get("is_procedure") else "CREATE FUNCTION"
    if cls == "VacuumStmt":
        return "VACUUM" if f.get("is_vacuumcmd") else "ANALYZE"
    if cls == "CreateTableAsStmt":
        return "CREATE MATERIALIZED VIEW" if f.get("objtype") == "OBJECT_MATVIEW" else "CREATE TABLE AS"
    if cls == "DropStmt":
        return f"DROP {_object(f.get('removeType'))}"
    if cls == "AlterTableStmt":
        return f"ALTER {_object(f.get('objtype'))}"
    if cls == "RenameStmt":
        return f"ALTER {_object(f.get('renameType'))} ... RENAME"
    if cls == "AlterObjectSchemaStmt":
        return f"ALTER {_object(f.get('objectType'))} ... SET SCHEMA"
    if cls == "CommentStmt":
        return f"COMMENT ON {_object(f.get('objtype'))}"
    if cls == "DefineStmt":
        return f"CREATE {_object(f.get('kind'))}"
    if cls in _NAMES:
        return _NAMES[cls]
    # CopyStmt -> COPY, DoStmt -> DO, CreateExtensionStmt -> CREATE EXTENSION, ...
    return " ".join(re.findall(r"[A-Z][a-z]*", cls.removesuffix("Stmt"))).upper()
