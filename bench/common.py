"""Helpers shared by the benchmarks: timing statistics, a report table, a free port, the bare
database path (COPY into pandas) that the service paths are measured against."""

from __future__ import annotations

import io
import json
import socket
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "bench-output"
console = Console()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(fn, repeat: int, warmup: int = 2) -> list[float]:
    """Seconds per call of fn(i), after warm-up calls."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(repeat):
        t0 = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - t0)
    return out


def side_by_side(paths: dict[str, object], repeat: int, warmup: int = 2) -> dict[str, tuple[float, float]]:
    """p50 and p95 in ms of each path's fn(i), the paths taking turns call by call, so a busy
    moment of the machine weighs on all of them alike and their ratios stay fair."""
    for i in range(warmup):
        for fn in paths.values():
            fn(i)
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for i in range(repeat):
        for name, fn in paths.items():
            t0 = time.perf_counter()
            fn(i)
            samples[name].append((time.perf_counter() - t0) * 1000)
    return {name: p50_p95(values) for name, values in samples.items()}


def p50_p95(samples: list[float]) -> tuple[float, float]:
    qs = statistics.quantiles(samples, n=20, method="inclusive")
    return statistics.median(samples), qs[18]


def report(title: str, columns: list[str], rows: list[list], name: str) -> None:
    table = Table(title=title)
    for c in columns:
        table.add_column(c, justify="left" if c == columns[0] else "right")
    for r in rows:
        table.add_row(*[f"{v:.2f}" if isinstance(v, float) else str(v) for v in r])
    console.print(table)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / f"{name}.json").write_text(json.dumps({"title": title, "columns": columns, "rows": rows}, indent=1))


def copy_to_pandas(settings, sql: str):
    """The bare path: psycopg COPY ... TO STDOUT (CSV) into pandas.read_csv."""
    import pandas as pd
    from starbox import database

    with database.connect_admin(settings) as conn:
        buf = io.BytesIO()
        with conn.cursor().copy(f"COPY ({sql}) TO STDOUT (FORMAT csv, HEADER true)") as copy:
            for block in copy:
                buf.write(block)
    buf.seek(0)
    return pd.read_csv(buf)


def report_against_bare(title: str, t_bare: float, paths: list[tuple[str, float]], name: str) -> None:
    """A table of seconds per path and their ratio to the bare COPY → pandas time."""
    rows = [["psycopg COPY … TO STDOUT → pandas.read_csv (bare)", t_bare, 1.0]]
    rows += [[label, t, t / t_bare] for label, t in paths]
    report(title, ["path", "seconds", "ratio to bare"], rows, name)
