"""Data Lab's rules for MyDB table names (Util.validTableName), shared by the query and MyDB code."""

from __future__ import annotations

import re

from starbox.errors import StarboxError

NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def mydb_table(name: str) -> str:
    """`mydb://t`, `mydb.t` or `t` → `t`, refusing what Data Lab's client would refuse."""
    raw = name
    if name.startswith("mydb://"):
        name = name[len("mydb://"):]
    if name.count(".") == 1 and name.split(".")[0] == "mydb":
        name = name.split(".")[1]
    if not NAME.match(name):
        raise StarboxError(f'Error: Invalid table name: "{raw}"')
    return name
