"""Execute notebooks with nbclient, one kernel each, and classify what went wrong.

Each notebook runs in a worker thread with its own asyncio loop and its own
kernel process, so a crash, a hang or a dead kernel in one notebook cannot
stop the others. Threads (not processes) keep results and progress callbacks
simple; the isolation that matters is the kernel, which is always a separate
process started in its own session.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import os
import re
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from .discover import Target, discover

PASS, FAIL, TIMEOUT, DEAD_KERNEL, NO_KERNEL, ERROR = (
    "PASS",
    "FAIL",
    "TIMEOUT",
    "DEAD KERNEL",
    "NO KERNEL",
    "ERROR",
)
DEFAULT_KERNEL = "python3"  # what Jupyter and the Data Lab harness assume without metadata
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")

# nbclient logs every timeout and dead kernel at ERROR level; each one is
# already in the result, so its log stays quiet unless someone attaches a
# handler to this logger.
NBCLIENT_LOG = logging.getLogger("starbox.notebooks.nbclient")
NBCLIENT_LOG.addHandler(logging.NullHandler())
NBCLIENT_LOG.propagate = False


@dataclass
class CellTiming:
    index: int  # position in the notebook's cell list, 0-based like nb.cells[index]
    seconds: float


@dataclass
class NotebookResult:
    notebook: str
    path: str
    status: str = ERROR
    duration_s: float = 0.0
    started_at: float = 0.0  # epoch seconds, to show what overlapped in a parallel run
    kernel: str | None = None
    failed_cell: int | None = None
    failed_source: str = ""  # first line of the failing cell
    error: str = ""  # one line, for tables
    ename: str = ""
    evalue: str = ""
    traceback: str = ""  # ANSI codes stripped
    cells: list[CellTiming] = field(default_factory=list)
    executed_path: str | None = None
    kernel_log: str | None = None  # the kernel's own stdout/stderr

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclass(frozen=True)
class Options:
    keep_dir: Path
    kernels: tuple[str, ...]  # installed kernel names, looked up once per run
    kernel: str | None = None
    timeout: int | None = 600
    prerun_code: str | None = None
    prerun_name: str = ""
    startup_timeout: int = 60


@dataclass
class RunResult:
    results: list[NotebookResult]
    keep_dir: Path
    duration_s: float
    interrupted: bool = False

    @property
    def failed(self) -> list[NotebookResult]:
        return [r for r in self.results if not r.passed]

    @property
    def ok(self) -> bool:
        return bool(self.results) and not self.failed and not self.interrupted


class BadNotebook(Exception):
    """The file cannot be read as a Jupyter notebook; the message is one line."""


def _wait_for_replies_in_slices() -> None:
    """Work around jupyter/nbclient#312: after a cell that shows ipywidgets, nbclient sometimes
    does not wake up for an execute reply that has already arrived and waits out the whole cell
    timeout before reading it (the cell passes, minutes late). Waiting in half-second slices
    bounds that delay; it changes nothing else about how messages are read."""
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    original = AsyncZMQSocketChannel.get_msg
    if getattr(original, "_starbox_sliced", False):
        return

    async def get_msg(self, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            step = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            try:
                return await original(self, timeout=step)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    get_msg._starbox_sliced = True
    AsyncZMQSocketChannel.get_msg = get_msg


_wait_for_replies_in_slices()


def strip_ansi(text: str) -> str:
    return ANSI.sub("", text)


def first_line(source: str, width: int = 100) -> str:
    line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def available_kernels() -> tuple[str, ...]:
    return tuple(sorted(KernelSpecManager().find_kernel_specs()))


def load_notebook(path: Path) -> nbformat.NotebookNode:
    if path.suffix != ".ipynb":
        raise BadNotebook(f"not a notebook (expected a .ipynb file): {path.name}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadNotebook("not a notebook: the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadNotebook(f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(data, dict) or "nbformat" not in data:
        raise BadNotebook("not a notebook: the JSON has no 'nbformat' key")
    if data.get("nbformat") == 4 and data.get("nbformat_minor", 0) >= 5:
        # Add the cell ids nbformat >= 4.5 requires, as normalize() would,
        # without its warning on the terminal for every old notebook.
        for cell in data.get("cells") if isinstance(data.get("cells"), list) else []:
            if isinstance(cell, dict):
                cell.setdefault("id", uuid.uuid4().hex[:8])
    try:
        return nbformat.reads(json.dumps(data), as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for bad schema
        raise BadNotebook(f"not a valid notebook: {first_line(str(exc), 200)}") from None


class KernelRegistry:
    """Kernels now running, so an interrupt can kill them from the main thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._managers: set = set()
        self.cancelled = False

    def add(self, km) -> None:
        with self._lock:
            self._managers.add(km)

    def discard(self, km) -> None:
        with self._lock:
            self._managers.discard(km)

    def kill_all(self) -> None:
        self.cancelled = True
        with self._lock:
            for km in self._managers:
                process = getattr(km.provisioner, "process", None)
                if process is not None:
                    process.kill()  # the worker then sees a dead kernel and returns


def _set_failure(result: NotebookResult, status: str, error: str, *, cell=None, index=None) -> None:
    result.status, result.error = status, error
    result.failed_cell = index
    if cell is not None:
        result.failed_source = first_line(cell.source)


def _cell_failed(result: NotebookResult, cell, index: int, exc: CellExecutionError) -> None:
    out = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
    ename, evalue = (out.ename, out.evalue) if out else (exc.ename, exc.evalue)
    trace = "\n".join(out.traceback) if out else exc.traceback
    result.ename, result.evalue, result.traceback = ename, evalue, strip_ansi(trace)
    _set_failure(result, FAIL, f"{ename}: {evalue}" if evalue else ename, cell=cell, index=index)


async def _prerun(client: NotebookClient, opts: Options, result: NotebookResult) -> bool:
    # Sent straight to the kernel rather than as an inserted cell: cell
    # numbers stay those of the file, and a login secret never lands in the
    # executed copy. Its output is ignored (later cells filter by message id).
    fake_cell = nbformat.v4.new_code_cell(opts.prerun_code)  # only names the code in a timeout error
    msg_id = await ensure_async(client.kc.execute(opts.prerun_code, store_history=False))
    reply = await client.async_wait_for_reply(msg_id, fake_cell)
    content = (reply or {}).get("content", {})
    if content.get("status") != "error":
        return True
    result.ename, result.evalue = content.get("ename", ""), content.get("evalue", "")
    result.traceback = strip_ansi("\n".join(content.get("traceback", [])))
    _set_failure(result, FAIL, f"prerun {opts.prerun_name} failed: {result.ename}: {result.evalue}")
    result.failed_source = f"(prerun {opts.prerun_name})"
    return False


async def _execute(nb, target: Target, opts: Options, result: NotebookResult, kernels: KernelRegistry, log) -> None:
    client = NotebookClient(
        nb,
        kernel_name=result.kernel,
        timeout=opts.timeout or None,
        startup_timeout=opts.startup_timeout,
        shutdown_kernel="immediate",  # nothing to flush, and a hung cell would delay a graceful stop
        record_timing=True,
        log=NBCLIENT_LOG,
        resources={"metadata": {"path": str(target.path.parent)}},  # run where the notebook lives
    )
    stage, index, cell, km = "start", None, None, None  # where we are, for the failure report
    try:
        # The kernel's own output (start-up warnings, C-level prints, a crash
        # message) goes to a log file, not over the progress display.
        async with client.async_setup_kernel(stdout=log, stderr=log):
            km = client.km
            kernels.add(km)
            stage = "prerun"
            if opts.prerun_code and not await _prerun(client, opts, result):
                return
            stage = "cells"
            for index, cell in enumerate(nb.cells):
                tags = cell.get("metadata", {}).get("tags", [])
                if cell.cell_type != "code" or not cell.source.strip() or client.skip_cells_with_tag in tags:
                    continue
                start = time.monotonic()
                try:
                    await client.async_execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                finally:
                    result.cells.append(CellTiming(index, round(time.monotonic() - start, 3)))
            stage = "shutdown"
        result.status = PASS
    except CellExecutionError as exc:
        _cell_failed(result, cell, index, exc)
    except CellTimeoutError as exc:
        _set_failure(result, TIMEOUT, f"still running after the {opts.timeout} s cell timeout", cell=cell, index=index)
        result.traceback = strip_ansi(str(exc)) if stage == "cells" else ""  # the preview would show prerun code
    except DeadKernelError:
        _set_failure(result, DEAD_KERNEL, "kernel died (out of memory, a crash or os._exit?)", cell=cell, index=index)
    except NoSuchKernel as exc:
        _set_failure(result, NO_KERNEL, f"kernel {exc.name!r} is not installed")
    except OSError as exc:
        if stage != "start":
            raise
        # A kernelspec whose program is gone (a deleted environment) is as good as missing.
        _set_failure(result, NO_KERNEL, f"kernel {result.kernel!r} cannot start: {exc.strerror or exc}: {exc.filename}")
    except RuntimeError as exc:
        if stage != "start" or "died" not in str(exc):
            raise
        _set_failure(result, DEAD_KERNEL, f"kernel {result.kernel!r} died while starting: {first_line(str(exc))}")
    finally:
        if km is not None:
            kernels.discard(km)
        # nbclient leaves its atexit clean-up registered when the kernel fails
        # to start, and that hook then prints a traceback at interpreter exit.
        atexit.unregister(client._cleanup_kernel)
    if stage == "prerun" and result.status in (TIMEOUT, DEAD_KERNEL):
        result.failed_source = f"(prerun {opts.prerun_name})"


def _log_tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
    return "Kernel output (last lines):\n" + "\n".join(text) if text else ""


def run_notebook(target: Target, opts: Options, kernels: KernelRegistry | None = None) -> NotebookResult:
    """Run one notebook; never raises, every problem becomes a status."""
    kernels = kernels or KernelRegistry()
    result = NotebookResult(notebook=target.name, path=str(target.path), started_at=time.time())
    start = time.monotonic()
    try:
        if target.problem:
            result.error = target.problem
            return result
        nb = load_notebook(target.path)
        result.kernel = opts.kernel or nb.metadata.get("kernelspec", {}).get("name") or DEFAULT_KERNEL
        if result.kernel not in opts.kernels:
            result.status = NO_KERNEL
            result.error = f"kernel {result.kernel!r} is not installed (available: {', '.join(opts.kernels) or 'none'})"
            return result
        dest = opts.keep_dir / target.name  # executed copies mirror the relative paths
        dest.parent.mkdir(parents=True, exist_ok=True)
        log_path = dest.with_suffix(".kernel.log")
        with log_path.open("w", encoding="utf-8") as log:
            asyncio.run(_execute(nb, target, opts, result, kernels, log))
        result.kernel_log = str(log_path)
        if result.status == DEAD_KERNEL:
            result.traceback = _log_tail(log_path)
        try:
            nbformat.write(nb, str(dest))
            result.executed_path = str(dest)
        except Exception as exc:  # the run's verdict stands; only the copy is missing
            note = f"executed copy not saved: {first_line(str(exc))}"
            result.error = f"{result.error}; {note}" if result.error else note
        if kernels.cancelled and not result.passed:
            _set_failure(result, ERROR, "interrupted", index=result.failed_cell)
    except BadNotebook as exc:
        result.status, result.error = ERROR, str(exc)
    except OSError as exc:
        result.status, result.error = ERROR, f"{exc.strerror or exc}: {exc.filename or target.name}"
    except Exception as exc:  # a harness bug or an odd kernel must still produce a row
        result.status, result.error = ERROR, f"{type(exc).__name__}: {first_line(str(exc), 200)}"
        result.traceback = traceback.format_exc()
    finally:
        result.duration_s = round(time.monotonic() - start, 3)
    return result


def run_all(
    targets: list[Target],
    opts: Options,
    jobs: int = 1,
    on_start: Callable[[Target], None] | None = None,
    on_finish: Callable[[NotebookResult], None] | None = None,
) -> tuple[list[NotebookResult], bool]:
    """Run ``targets`` on ``jobs`` workers; returns results in input order and
    whether the run was interrupted (Ctrl-C kills the running kernels and
    marks what never ran)."""
    kernels = KernelRegistry()
    done: dict[int, NotebookResult] = {}

    def work(target: Target) -> NotebookResult:
        if on_start:
            on_start(target)
        return run_notebook(target, opts, kernels)

    pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="nbtest")
    futures = {pool.submit(work, t): i for i, t in enumerate(targets)}
    try:
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            if on_finish:
                on_finish(done[futures[future]])
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        kernels.kill_all()
        for future, i in futures.items():
            if not future.cancelled():
                done[i] = future.result()  # returns within a second of its kernel being killed
    finally:
        pool.shutdown(wait=True)
    results = [
        done.get(i) or NotebookResult(t.name, str(t.path), ERROR, error="not run: interrupted")
        for i, t in enumerate(targets)
    ]
    return results, kernels.cancelled


def run(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    kernel: str | None = None,
    jobs: int = 1,
    timeout: int | None = 600,
    prerun: str | os.PathLike[str] | None = None,
    keep_executed: str | os.PathLike[str] | None = None,
    on_discover: Callable[[list[Target]], None] | None = None,
    on_start: Callable[[Target], None] | None = None,
    on_finish: Callable[[NotebookResult], None] | None = None,
) -> RunResult:
    """Discover and run notebooks. ``timeout`` is per cell (0 or None: no limit).
    The callbacks feed a progress display; ``on_start`` comes from worker threads.

    Raises FileNotFoundError for a missing ``prerun`` file: that is a mistake
    in the invocation, not in a notebook.
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    prerun_code = Path(prerun).read_text(encoding="utf-8") if prerun else None
    keep_dir = Path(keep_executed) if keep_executed else Path(tempfile.mkdtemp(prefix="starbox-nbtest-"))
    keep_dir.mkdir(parents=True, exist_ok=True)
    opts = Options(
        keep_dir=keep_dir.resolve(),
        kernels=available_kernels(),
        kernel=kernel,
        timeout=math.ceil(timeout) if timeout else None,  # nbclient counts whole seconds
        prerun_code=prerun_code,
        prerun_name=Path(prerun).name if prerun else "",
    )
    started = time.monotonic()
    targets = discover(paths, exclude, skip=[keep_dir])
    if on_discover:
        on_discover(targets)
    results, interrupted = run_all(targets, opts, jobs, on_start, on_finish)
    return RunResult(results, opts.keep_dir, round(time.monotonic() - started, 3), interrupted)
