"""Notebook regression testing: run notebooks, classify failures, report.

From a notebook::

    import starbox.notebooks
    df = starbox.notebooks.test("lessons/", jobs=2, timeout=300)
    df[df.status != "PASS"]
"""

from __future__ import annotations

import os
from typing import Iterable

from .discover import DEFAULT_EXCLUDES, IGNORE_FILE, Target, discover

_RUNNER = ("NotebookResult", "RunResult", "run")


def __getattr__(name: str):
    """The runner and its results load nbclient and nbformat (about 1.5 s): only when asked for,
    so that whatever imports this package for getlatest or discovery (every hub spawn's seeding,
    the CLI) does not pay for them."""
    if name in _RUNNER:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["test", "run", "discover", "NotebookResult", "RunResult", "Target", "DEFAULT_EXCLUDES", "IGNORE_FILE"]


def test(
    paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
    *,
    exclude: Iterable[str] = (),
    kernel: str | None = None,
    jobs: int = 1,
    timeout: int | None = 600,
    prerun: str | os.PathLike[str] | None = None,
    junit: str | os.PathLike[str] | None = None,
    html: str | os.PathLike[str] | None = None,
    keep_executed: str | os.PathLike[str] | None = None,
):
    """Run the notebooks under ``paths`` and return one row per notebook.

    The options mean what they mean for ``starbox nbtest``. Returns a pandas
    DataFrame with columns notebook, status, duration_s, failed_cell, error,
    executed_path; ``df.attrs["results"]`` holds the full NotebookResult
    objects (tracebacks, per-cell durations).
    """
    from . import report
    from .runner import run

    result = run(
        paths, exclude=exclude, kernel=kernel, jobs=jobs, timeout=timeout, prerun=prerun, keep_executed=keep_executed
    )
    if junit:
        report.write_junit(result, junit)
    if html:
        report.write_html(result, html)
    return report.to_frame(result)


test.__test__ = False  # a function named test_* or test must not be collected by pytest
