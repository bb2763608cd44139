"""The MyDB size quota (issue 11, item 7): after a statement that can grow a user's schema, in
the same transaction, the schema's size is measured and the transaction refused (rolled back by
the caller's `with conn.transaction()`) if it is over `mydb_quota_mb`."""

from __future__ import annotations

from starbox.accounts import role_name, schema_name
from starbox.errors import TooLarge

_ROLE_PREFIX = role_name("")


def check(conn, quota_mb: int, schema: str | None = None) -> None:
    """TooLarge if `schema` (default: the MyDB of the role `conn` is logged in as; none for
    anonymous) takes more than quota_mb MB: tables, materialized views, their indexes and TOAST,
    including what this transaction wrote. quota_mb 0: no quota."""
    if quota_mb <= 0:
        return
    if schema is None:
        role = getattr(conn, "connection", conn).info.user or ""
        if not role.startswith(_ROLE_PREFIX):
            return  # anonymous (or a service login): no MyDB
        schema = schema_name(role[len(_ROLE_PREFIX) :])
    used = conn.execute(
        "SELECT coalesce((SELECT bytes FROM starbox_lookup.schema_bytes WHERE schema_name = %s), 0)", (schema,)
    ).fetchone()[0]
    if used > quota_mb << 20:
        raise TooLarge(
            f"Error: MyDB quota of {quota_mb:,} MB exceeded: your tables would take "
            f"{used / (1 << 20):,.1f} MB; nothing was changed (drop or truncate tables to make room)"
        )
