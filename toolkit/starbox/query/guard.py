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

import re
from dataclasses import dataclass

from pglast import ast, parse_sql
from pglast.enums import ObjectType, TransactionStmtKind, VariableSetKind
from pglast.parser import ParseError
from pglast.visitors import Visitor

from starbox.errors import Forbidden, StarboxError

QUERY_KINDS = "SELECT, WITH, VALUES, TABLE, EXPLAIN"
USER_KINDS = f"{QUERY_KINDS}, INSERT, UPDATE, DELETE, and DDL on your MyDB tables"

# Objects of a user's MyDB schema that user DDL may name.
_TABLE_LIKE = {ObjectType.OBJECT_TABLE, ObjectType.OBJECT_VIEW, ObjectType.OBJECT_MATVIEW,
               ObjectType.OBJECT_INDEX, ObjectType.OBJECT_SEQUENCE}
_COMMENTABLE = _TABLE_LIKE | {ObjectType.OBJECT_COLUMN, ObjectType.OBJECT_TABCONSTRAINT}
_RENAMEABLE = _COMMENTABLE

# Calls refused wherever they appear (a CHECK, a DEFAULT, a subquery): they change session
# settings, which the service sets per query (the statement timeout among them).
_REFUSED_CALLS = {"set_config"}
# Views whose UPDATE is a SET in disguise (pg_settings' rule calls set_config).
_REFUSED_TARGETS = {"pg_settings"}


@dataclass(frozen=True)
class Checked:
    sql: str  # the one statement's text, without a trailing ';' or comments after it
    is_query: bool  # a query returning rows that can be wrapped (SELECT * FROM (...) _q)


def check(text: str, anonymous: bool) -> Checked:
    """The one statement in `text`, if this caller may run it; else a clear refusal."""
    try:
        statements = parse_sql(text)
    except ParseError as exc:  # libpg_query's message is PostgreSQL's own
        message, index = (exc.args + (None,))[:2] if exc.args else (str(exc), None)
        where = f" (at character {index + 1})" if isinstance(index, int) else ""
        raise StarboxError(f"Error: {message}{where}") from None
    if not statements:
        raise StarboxError("Error: no SQL statement in the query (only comments?)")
    if len(statements) > 1:
        kinds = ", ".join(kind(raw.stmt) for raw in statements[:4]) + (", ..." if len(statements) > 4 else "")
        raise Forbidden(f"Error: multiple statements are not allowed here; one statement per query, "
                        f"please (found {len(statements)}: {kinds})")
    raw = statements[0]
    stmt = raw.stmt
    _check_statement(stmt, anonymous)
    _Calls(anonymous)(stmt)
    end = raw.stmt_location + raw.stmt_len if raw.stmt_len else len(text)
    sql = text[raw.stmt_location:end].strip()
    return Checked(sql, isinstance(stmt, ast.SelectStmt) and stmt.intoClause is None)


def _check_statement(stmt: ast.Node, anonymous: bool) -> None:
    if isinstance(stmt, ast.ExplainStmt):
        _check_statement(stmt.query, anonymous)  # EXPLAIN ANALYZE runs it
        return
    if isinstance(stmt, ast.SelectStmt) and stmt.intoClause is None:
        return
    if _user_allowed(stmt):
        if anonymous:
            raise Forbidden(f"Error: {kind(stmt)} statements are not allowed here; anonymous callers "
                            f"may run queries only ({QUERY_KINDS}): log in to write to your MyDB")
        return
    raise Forbidden(f"Error: {kind(stmt)} statements are not allowed here; Starbox runs one statement per "
                    f"request, of these kinds: {USER_KINDS}")


def _user_allowed(stmt: ast.Node) -> bool:
    if isinstance(stmt, (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt,
                         ast.CreateStmt, ast.ViewStmt, ast.IndexStmt, ast.TruncateStmt,
                         ast.CreateSeqStmt, ast.AlterSeqStmt, ast.RefreshMatViewStmt)):
        return True
    if isinstance(stmt, ast.CreateTableAsStmt):
        return stmt.objtype in (ObjectType.OBJECT_TABLE, ObjectType.OBJECT_MATVIEW)
    if isinstance(stmt, ast.DropStmt):
        return stmt.removeType in _TABLE_LIKE
    if isinstance(stmt, ast.AlterTableStmt):
        return stmt.objtype in _TABLE_LIKE
    if isinstance(stmt, ast.RenameStmt):
        return stmt.renameType in _RENAMEABLE
    if isinstance(stmt, ast.AlterObjectSchemaStmt):
        return stmt.objectType in _TABLE_LIKE
    if isinstance(stmt, ast.CommentStmt):
        return stmt.objtype in _COMMENTABLE
    if isinstance(stmt, ast.VacuumStmt):
        return not stmt.is_vacuumcmd  # ANALYZE: statistics for the planner; VACUUM is the admin's
    return False


class _Calls(Visitor):
    """Refusals anywhere in the tree: settings calls, pg_settings as a write target and,
    for anonymous callers, data-modifying statements inside a query (WITH ... DELETE)."""

    def __init__(self, anonymous: bool):
        super().__init__()
        self.anonymous = anonymous

    def visit_FuncCall(self, ancestors, node):
        name = node.funcname[-1].sval.lower()
        if name in _REFUSED_CALLS:
            raise Forbidden(f"Error: {name}() calls are not allowed here; the service sets the session's "
                            f"settings for each query (read them with current_setting())")

    def _target(self, node):
        relation = getattr(node, "relation", None)
        if relation is not None and relation.relname.lower() in _REFUSED_TARGETS \
                and (relation.schemaname or "pg_catalog").lower() == "pg_catalog":
            raise Forbidden(f"Error: changing {relation.relname} is not allowed here; it sets the session's "
                            f"settings, which the service sets for each query")
        if self.anonymous:
            raise Forbidden(f"Error: {kind(node)} statements are not allowed here; anonymous callers may "
                            f"run queries only ({QUERY_KINDS}): log in to write to your MyDB")

    visit_InsertStmt = visit_UpdateStmt = visit_DeleteStmt = visit_MergeStmt = \
        lambda self, ancestors, node: self._target(node)


_NAMES = {
    "AlterRoleSetStmt": "ALTER ROLE", "AlterRoleStmt": "ALTER ROLE", "CreateRoleStmt": "CREATE ROLE",
    "DropRoleStmt": "DROP ROLE", "GrantRoleStmt": "GRANT ROLE", "CreatedbStmt": "CREATE DATABASE",
    "DropdbStmt": "DROP DATABASE", "AlterDatabaseSetStmt": "ALTER DATABASE", "CreateStmt": "CREATE TABLE",
    "ViewStmt": "CREATE VIEW", "IndexStmt": "CREATE INDEX", "CreateSeqStmt": "CREATE SEQUENCE",
    "AlterSeqStmt": "ALTER SEQUENCE", "CreateTrigStmt": "CREATE TRIGGER", "RuleStmt": "CREATE RULE",
    "CreatePLangStmt": "CREATE LANGUAGE", "DeclareCursorStmt": "DECLARE CURSOR", "ClosePortalStmt": "CLOSE",
    "VariableShowStmt": "SHOW", "CheckPointStmt": "CHECKPOINT", "ExecuteStmt": "EXECUTE",
    "PrepareStmt": "PREPARE", "DeallocateStmt": "DEALLOCATE", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
    "DropOwnedStmt": "DROP OWNED", "ReassignOwnedStmt": "REASSIGN OWNED", "CreateStatsStmt": "CREATE STATISTICS",
    "CreateEventTrigStmt": "CREATE EVENT TRIGGER", "SecLabelStmt": "SECURITY LABEL", "ConstraintsSetStmt": "SET CONSTRAINTS",
    "CompositeTypeStmt": "CREATE TYPE", "CreateEnumStmt": "CREATE TYPE", "CreateRangeStmt": "CREATE TYPE",
    "AlterFunctionStmt": "ALTER FUNCTION", "AlterOwnerStmt": "ALTER ... OWNER",
    "InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE",
}
_TRANSACTIONS = {
    TransactionStmtKind.TRANS_STMT_BEGIN: "BEGIN", TransactionStmtKind.TRANS_STMT_START: "START TRANSACTION",
    TransactionStmtKind.TRANS_STMT_COMMIT: "COMMIT", TransactionStmtKind.TRANS_STMT_ROLLBACK: "ROLLBACK",
    TransactionStmtKind.TRANS_STMT_SAVEPOINT: "SAVEPOINT", TransactionStmtKind.TRANS_STMT_RELEASE: "RELEASE SAVEPOINT",
    TransactionStmtKind.TRANS_STMT_ROLLBACK_TO: "ROLLBACK TO SAVEPOINT",
    TransactionStmtKind.TRANS_STMT_PREPARE: "PREPARE TRANSACTION",
    TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED: "COMMIT PREPARED",
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED: "ROLLBACK PREPARED",
}
_SPECIAL_SETTINGS = {"role": "ROLE", "session_authorization": "SESSION AUTHORIZATION",
                     "transaction": "TRANSACTION", "session characteristics": "SESSION CHARACTERISTICS"}


def _object(objtype) -> str:
    """ObjectType.OBJECT_MATVIEW -> 'MATERIALIZED VIEW'."""
    name = objtype.name.removeprefix("OBJECT_")
    return {"MATVIEW": "MATERIALIZED VIEW", "FDW": "FOREIGN DATA WRAPPER", "TABCONSTRAINT": "CONSTRAINT",
            "STATISTIC_EXT": "STATISTICS", "LARGEOBJECT": "LARGE OBJECT"}.get(name, name.replace("_", " "))


def kind(stmt: ast.Node) -> str:
    """The statement's kind as a user would name it: 'ALTER ROLE', 'SET ROLE', 'COMMIT', 'DROP FUNCTION'."""
    cls = type(stmt).__name__
    if isinstance(stmt, ast.SelectStmt):
        return "SELECT INTO" if stmt.intoClause is not None else "SELECT"
    if isinstance(stmt, ast.VariableSetStmt):
        verb = "RESET" if stmt.kind in (VariableSetKind.VAR_RESET, VariableSetKind.VAR_RESET_ALL) else "SET"
        if stmt.kind == VariableSetKind.VAR_RESET_ALL:
            return "RESET ALL"
        what = _SPECIAL_SETTINGS.get((stmt.name or "").lower())
        return f"{verb} {what}" if what else verb
    if isinstance(stmt, ast.TransactionStmt):
        return _TRANSACTIONS.get(stmt.kind, "transaction control")
    if isinstance(stmt, ast.GrantStmt):
        return "GRANT" if stmt.is_grant else "REVOKE"
    if isinstance(stmt, ast.GrantRoleStmt):
        return "GRANT ROLE" if stmt.is_grant else "REVOKE ROLE"
    if isinstance(stmt, ast.CreateFunctionStmt):
        return "CREATE PROCEDURE" if stmt.is_procedure else "CREATE FUNCTION"
    if isinstance(stmt, ast.VacuumStmt):
        return "VACUUM" if stmt.is_vacuumcmd else "ANALYZE"
    if isinstance(stmt, ast.CreateTableAsStmt):
        return "CREATE MATERIALIZED VIEW" if stmt.objtype == ObjectType.OBJECT_MATVIEW else "CREATE TABLE AS"
    if isinstance(stmt, ast.DropStmt):
        return f"DROP {_object(stmt.removeType)}"
    if isinstance(stmt, ast.AlterTableStmt):
        return f"ALTER {_object(stmt.objtype)}"
    if isinstance(stmt, ast.RenameStmt):
        return f"ALTER {_object(stmt.renameType)} ... RENAME"
    if isinstance(stmt, ast.AlterObjectSchemaStmt):
        return f"ALTER {_object(stmt.objectType)} ... SET SCHEMA"
    if isinstance(stmt, ast.CommentStmt):
        return f"COMMENT ON {_object(stmt.objtype)}"
    if isinstance(stmt, ast.DefineStmt):
        return f"CREATE {_object(stmt.kind)}"
    if cls in _NAMES:
        return _NAMES[cls]
    # CopyStmt -> COPY, DoStmt -> DO, CreateExtensionStmt -> CREATE EXTENSION, ...
    return " ".join(re.findall(r"[A-Z][a-z]*", cls.removesuffix("Stmt"))).upper()
