"""`starbox nbtest`: run notebooks as regression tests.

Exit status: 0 when every notebook passed, 1 when any did not (or none was
found), 2 for a usage error, 130 when interrupted.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from starbox import settings as settings_mod
from starbox.errors import StarboxError

from . import report
from .discover import IGNORE_FILE, Target
from .login import kernels_logged_in
from .runner import NotebookResult, run


class _Display:
    """Progress bar naming the notebooks running now, plus one line per finished one."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("discovering notebooks", total=None)
        self.running: list[str] = []
        self.lock = threading.Lock()  # on_start comes from worker threads

    def found(self, targets: list[Target]) -> None:
        self.progress.update(self.task, total=len(targets), description="starting")

    def _describe(self) -> None:
        names = ", ".join(self.running) or "waiting"
        self.progress.update(self.task, description=f"running {escape(names)}")

    def start(self, target: Target) -> None:
        with self.lock:
            self.running.append(target.name)
            self._describe()

    def finish(self, result: NotebookResult) -> None:
        with self.lock:
            if result.notebook in self.running:
                self.running.remove(result.notebook)
            self._describe()
            self.progress.advance(self.task)
        style = report.RICH_STYLE[result.status]
        detail = f"  {escape(result.error.splitlines()[0])}" if result.error else ""
        self.progress.console.print(
            f"[{style}]{result.status:<11}[/] {escape(result.notebook)} [dim]{result.duration_s:.1f} s[/]{detail}",
            highlight=False,
            soft_wrap=True,
        )


def _unreadable(path: Path) -> str | None:
    if not path.is_file():
        return "not found"
    try:
        path.read_text(encoding="utf-8")
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    except UnicodeDecodeError:
        return "is not UTF-8 text"
    return None


def nbtest(
    paths: Annotated[
        Optional[list[Path]],
        typer.Argument(
            help="Notebooks or folders (searched recursively). Default: the current folder.", show_default=False
        ),
    ] = None,
    exclude: Annotated[
        Optional[list[str]],
        typer.Option(
            "--exclude",
            "-x",
            metavar="GLOB",
            help=f"Skip matching notebooks or folders (repeatable); {IGNORE_FILE} files add more.",
        ),
    ] = None,
    kernel: Annotated[
        Optional[str], typer.Option(help="Kernel for every notebook, instead of each notebook's own.")
    ] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Notebooks run in parallel.")] = 1,
    timeout: Annotated[int, typer.Option(min=0, help="Seconds one cell may run (0: no limit).")] = 600,
    prerun: Annotated[
        Optional[Path],
        typer.Option(metavar="FILE", help="Python file run in each kernel before the first cell (e.g. a login)."),
    ] = None,
    junit: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Write a JUnit XML report.")] = None,
    html: Annotated[Optional[Path], typer.Option(metavar="FILE", help="Write a self-contained HTML report.")] = None,
    keep_executed: Annotated[
        Optional[Path],
        typer.Option(metavar="DIR", help="Folder for the executed copies. Default: a new temporary folder."),
    ] = None,
    user: Annotated[
        Optional[str],
        typer.Option(
            metavar="ACCOUNT",
            help="The Starbox account the kernels are logged in as ('anonymous' for none). Default, for the "
            "appliance's owner: the lesson account JupyterLab uses.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run notebooks top to bottom and report which ones fail, and where."""
    console = Console(highlight=False)
    if prerun is not None:
        problem = _unreadable(prerun)
        if problem:
            console.print(f"[red]error:[/] prerun file {problem}: {escape(str(prerun))}")
            raise typer.Exit(2)
    if keep_executed is not None and keep_executed.exists() and not keep_executed.is_dir():
        console.print(f"[red]error:[/] --keep-executed is not a folder: {escape(str(keep_executed))}")
        raise typer.Exit(2)

    try:
        with kernels_logged_in(settings_mod.get(), user) as who:
            console.print(f"[dim]{escape(who)}[/]")
            result = _run_with_progress(console, paths, exclude, kernel, jobs, timeout, prerun, keep_executed)
    except StarboxError as exc:  # an account that cannot be logged in to
        console.print(f"[red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2)
    _report(console, result, junit, html)


def _run_with_progress(console, paths, exclude, kernel, jobs, timeout, prerun, keep_executed):
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        display = _Display(progress)
        try:
            return run(
                paths,
                exclude=exclude or [],
                kernel=kernel,
                jobs=jobs,
                timeout=timeout or None,
                prerun=prerun,
                keep_executed=keep_executed,
                on_discover=display.found,
                on_start=display.start,
                on_finish=display.finish,
            )
        except OSError as exc:  # unreadable prerun file, uncreatable --keep-executed folder
            progress.stop()
            console.print(f"[red]error:[/] {escape(exc.strerror or str(exc))}: {escape(str(exc.filename or ''))}")
            raise typer.Exit(2)


def _report(console, result, junit, html) -> None:
    if not result.results:
        console.print(
            "[red]No notebooks found[/] (check the paths, --exclude and "
            f"{IGNORE_FILE} files; copies and templates are skipped by default)."
        )
        raise typer.Exit(1)
    report.print_failures(result, console)
    report.print_table(result, console)
    for writer, target, label in ((report.write_junit, junit, "JUnit XML"), (report.write_html, html, "HTML report")):
        if target is not None:
            try:
                console.print(f"{label}: {writer(result, target)}", soft_wrap=True)
            except OSError as exc:
                console.print(f"[red]error:[/] cannot write {label} to {escape(str(target))}: {exc.strerror}")
                raise typer.Exit(2)
    raise typer.Exit(130 if result.interrupted else 0 if result.ok else 1)


app = typer.Typer(add_completion=False, help="Notebook regression tests.")
app.command("nbtest")(nbtest)

if __name__ == "__main__":
    app()
