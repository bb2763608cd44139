"""Reports of a run: rich table, JUnit XML, self-contained HTML, DataFrame."""

from __future__ import annotations

import html
import os
import re
import socket
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .runner import DEAD_KERNEL, ERROR, FAIL, NO_KERNEL, PASS, TIMEOUT, NotebookResult, RunResult

ORDER = (PASS, FAIL, TIMEOUT, DEAD_KERNEL, NO_KERNEL, ERROR)
RICH_STYLE = {
    PASS: "bold green",
    FAIL: "bold red",
    TIMEOUT: "bold yellow",
    DEAD_KERNEL: "bold magenta",
    NO_KERNEL: "bold cyan",
    ERROR: "bold red",
}
HTML_COLOUR = {
    PASS: "#1a7f37",
    FAIL: "#cf222e",
    TIMEOUT: "#9a6700",
    DEAD_KERNEL: "#8250df",
    NO_KERNEL: "#0969da",
    ERROR: "#cf222e",
}
# Characters XML 1.0 forbids; tracebacks can carry them (\b from progress bars).
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def summary_line(run: RunResult) -> str:
    counts = Counter(r.status for r in run.results)
    parts = [f"{counts[s]} {'passed' if s == PASS else s}" for s in ORDER if counts[s]]
    total = len(run.results)
    text = f"{total} notebook{'s' * (total != 1)}: {', '.join(parts) or 'none found'} in {run.duration_s:.1f} s"
    return text + (" (interrupted)" if run.interrupted else "")


def cell_label(r: NotebookResult) -> str:
    if r.failed_cell is None:
        return r.failed_source
    return f"[{r.failed_cell}] {r.failed_source}".rstrip()


def failure_message(r: NotebookResult) -> str:
    where = f" in cell {r.failed_cell} ({r.failed_source})" if r.failed_cell is not None else ""
    return f"{r.status}{where}: {r.error}"


def print_table(run: RunResult, console: Console) -> None:
    table = Table(title="Notebook tests", title_justify="left")
    table.add_column("Notebook", overflow="fold")
    table.add_column("Status", no_wrap=True)
    table.add_column("Time (s)", justify="right", no_wrap=True)
    table.add_column("Failing cell", overflow="fold")
    table.add_column("Error", overflow="fold")
    for r in run.results:
        table.add_row(
            r.notebook,
            Text(r.status, style=RICH_STYLE[r.status]),
            f"{r.duration_s:.1f}",
            cell_label(r),
            r.error.splitlines()[0] if r.error else "",
        )
    console.print(table)
    # soft_wrap: paths must stay whole to be copied from a terminal or CI log.
    console.print(summary_line(run), style="green" if run.ok else "red", highlight=False, soft_wrap=True)
    console.print(f"Executed copies: {run.keep_dir}", highlight=False, soft_wrap=True)


def print_failures(run: RunResult, console: Console, lines: int = 12) -> None:
    """The end of each traceback, so a CI log shows why without opening a report."""
    for r in run.failed:
        if not r.traceback:
            continue
        where = f", cell {r.failed_cell}" if r.failed_cell is not None else ""
        console.rule(f"{r.notebook}{where}: {r.status}", style=RICH_STYLE[r.status], align="left")
        console.print(Text("\n".join(r.traceback.rstrip().splitlines()[-lines:])))
        console.print()


def _xml(text: str) -> str:
    return XML_INVALID.sub("", text)


def write_junit(run: RunResult, path: str | os.PathLike[str]) -> Path:
    """One testcase per notebook; FAIL, TIMEOUT and DEAD KERNEL are failures
    of the notebook, NO KERNEL and ERROR are errors of the set-up."""
    counts = Counter(r.status for r in run.results)
    failures = counts[FAIL] + counts[TIMEOUT] + counts[DEAD_KERNEL]
    errors = counts[NO_KERNEL] + counts[ERROR]
    stats: dict[str, Any] = {
        "tests": str(len(run.results)),
        "failures": str(failures),
        "errors": str(errors),
        "skipped": "0",
        "time": f"{run.duration_s:.3f}",
    }
    root = ET.Element("testsuites", name="starbox nbtest", **stats)
    suite = ET.SubElement(
        root,
        "testsuite",
        name="starbox nbtest",
        hostname=socket.gethostname(),
        timestamp=time.strftime("%Y-%m-%dT%H:%M:%S"),
        **stats,
    )
    for r in run.results:
        folder, _, name = r.notebook.rpartition("/")
        case = ET.SubElement(
            suite,
            "testcase",
            classname=folder.replace("/", ".") or "notebooks",
            name=name,
            file=r.path,
            time=f"{r.duration_s:.3f}",
        )
        props = ET.SubElement(case, "properties")
        for key, value in (("status", r.status), ("kernel", r.kernel), ("executed_path", r.executed_path)):
            if value:
                ET.SubElement(props, "property", name=key, value=_xml(value))
        if not r.passed:
            kind = "error" if r.status in (NO_KERNEL, ERROR) else "failure"
            element = ET.SubElement(case, kind, type=r.status, message=_xml(failure_message(r)))
            element.text = _xml(r.traceback or r.error)
        if r.cells:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"cell {c.index}: {c.seconds:.3f} s" for c in r.cells)
    ET.indent(root)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)
    return target


CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1f2328}
h1{font-size:1.4em}table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.status{color:#fff;border-radius:4px;padding:0 .4em;font-weight:600;white-space:nowrap}
details{border:1px solid #d0d7de;border-radius:6px;margin:.6em 0;padding:.3em .8em}
summary{cursor:pointer;font-weight:600}
pre{background:#f6f8fa;padding:.8em;overflow:auto;white-space:pre-wrap}
.bar{background:#54aeff;height:.8em;min-width:1px}.muted{color:#656d76}
"""


def _badge(status: str) -> str:
    return f'<span class="status" style="background:{HTML_COLOUR[status]}">{html.escape(status)}</span>'


def _notebook_section(i: int, r: NotebookResult) -> str:
    e = html.escape
    info = [
        ("Path", r.path),
        ("Kernel", r.kernel or "–"),
        ("Executed copy", r.executed_path or "–"),
        ("Started", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.started_at))),
    ]
    if not r.passed:
        info.append(("Failing cell", cell_label(r) or "–"))
        info.append(("Error", r.error))
    rows = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in info)
    longest = max((c.seconds for c in r.cells), default=0) or 1
    cells = "".join(
        f'<tr><td class="num">{c.index}</td><td class="num">{c.seconds:.3f}</td>'
        f'<td style="width:20em"><div class="bar" style="width:{100 * c.seconds / longest:.1f}%"></div></td></tr>'
        for c in r.cells
    )
    timing = (
        f"<table><tr><th>Cell</th><th>Seconds</th><th></th></tr>{cells}</table>"
        if cells
        else '<p class="muted">No cell ran.</p>'
    )
    trace = f"<h4>Traceback</h4><pre>{e(r.traceback)}</pre>" if r.traceback else ""
    return (
        f'<details id="nb{i}"{"" if r.passed else " open"}><summary>{_badge(r.status)} '
        f"{e(r.notebook)} <span class=muted>{r.duration_s:.1f} s</span></summary>"
        f"<table>{rows}</table><h4>Cell durations</h4>{timing}{trace}</details>"
    )


def write_html(run: RunResult, path: str | os.PathLike[str]) -> Path:
    """A single file with inline CSS and no scripts, so it can be mailed or
    archived as a CI artifact and still display."""
    e = html.escape
    rows = "".join(
        f'<tr><td><a href="#nb{i}">{e(r.notebook)}</a></td><td>{_badge(r.status)}</td>'
        f'<td class="num">{r.duration_s:.1f}</td><td>{e(cell_label(r))}</td><td>{e(r.error)}</td></tr>'
        for i, r in enumerate(run.results)
    )
    sections = "".join(_notebook_section(i, r) for i, r in enumerate(run.results))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Notebook tests</title><style>{CSS}</style></head>
<body><h1>Notebook tests</h1>
<p>{e(summary_line(run))}. Generated {e(time.strftime("%Y-%m-%d %H:%M:%S"))} on {e(socket.gethostname())}.
Executed copies in <code>{e(str(run.keep_dir))}</code>.</p>
<table><tr><th>Notebook</th><th>Status</th><th>Time (s)</th><th>Failing cell</th><th>Error</th></tr>{rows}</table>
{sections}
</body></html>
"""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(page, encoding="utf-8")
    return target


def to_frame(run: RunResult):
    """Columns notebook, status, duration_s, failed_cell, error, executed_path;
    the full results (tracebacks, cell timings) ride along in ``attrs``."""
    import pandas as pd  # only the notebook API needs pandas

    frame = pd.DataFrame(
        [(r.notebook, r.status, r.duration_s, r.failed_cell, r.error, r.executed_path) for r in run.results],
        columns=["notebook", "status", "duration_s", "failed_cell", "error", "executed_path"],
    )
    frame["failed_cell"] = frame["failed_cell"].astype("Int64")
    frame.attrs["results"] = run.results
    frame.attrs["keep_dir"] = str(run.keep_dir)
    return frame
