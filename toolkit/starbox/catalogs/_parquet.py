"""Writing a builder's output: Parquet, atomically (a half-written file never has the final name)."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_atomic(table: pa.Table, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    pq.write_table(table, tmp, row_group_size=200_000)
    os.replace(tmp, path)
    return path
