"""Issue 6's benchmark: the whole lesson set (lessons/) through the harness with --jobs 1 and
--jobs 2, the wall time of each and the ratio (Data Lab's sequential suite takes 20-30 min).

`main(settings)` runs against a running appliance (make bench passes the one it started);
`python -m bench.nbtest_bench` uses the appliance of the current settings.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from starbox import settings as settings_mod
from starbox.notebooks import publish
from starbox.notebooks import report as nb_report
from starbox.notebooks.runner import run

from bench.common import OUTPUT, ROOT, console, report

LESSONS = ROOT / "lessons"


@contextmanager
def _kernel_env(s: settings_mod.Settings, home: Path):
    """Kernels inherit this process's environment: point them at the appliance under test, with a
    fresh HOME so no saved login from elsewhere (~/.datalab) is picked up."""
    wanted = {
        "STARBOX_HOME": str(s.home),
        "STARBOX_PG_PORT": str(s.pg_port),
        "STARBOX_SERVICE_PORT": str(s.service_port),
        "HOME": str(home),
    }
    if s.database_url:
        wanted["STARBOX_DATABASE_URL"] = s.database_url
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(s: settings_mod.Settings, jobs: tuple[int, ...] = (1, 2)) -> list[list]:
    console.print("[bold]notebook harness benchmark[/] (lessons/ with --jobs 1 and --jobs 2)")
    rows: list[list] = []
    base = None
    say = lambda m: console.print(f"  {m}", highlight=False)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="starbox-nbbench-") as tmp, _kernel_env(s, Path(tmp) / "home"):
        (Path(tmp) / "home").mkdir()
        for n in jobs:
            # As when a publish tests the set: logged in as the (emptied) test account.
            with publish.harness_login(s, Path(tmp) / f"login-j{n}", say) as prerun:
                result = run([LESSONS], jobs=n, timeout=600, prerun=prerun, keep_executed=Path(tmp) / f"executed-j{n}")
            OUTPUT.mkdir(exist_ok=True)
            nb_report.write_junit(result, OUTPUT / f"nbtest_lessons_j{n}.xml")
            nb_report.write_html(result, OUTPUT / f"nbtest_lessons_j{n}.html")
            passed = sum(r.passed for r in result.results)
            base = base or result.duration_s
            console.print(f"  --jobs {n}: {nb_report.summary_line(result)}", highlight=False)
            for r in result.failed:
                console.print(f"    [red]{r.status}[/] {r.notebook}: {nb_report.failure_message(r)}", highlight=False)
            rows.append(
                [
                    f"--jobs {n}",
                    len(result.results),
                    passed,
                    result.duration_s,
                    round(base / result.duration_s, 2) if result.duration_s else 0.0,
                ]
            )
    if rows and not rows[0][1]:
        console.print("[yellow]no lessons found under lessons/ (only the template, which is skipped)[/]")
    report(
        "Lesson set through `starbox nbtest` (wall time, s)",
        ["run", "notebooks", "passed", "wall (s)", "speed-up vs --jobs 1"],
        rows,
        "nbtest_lessons",
    )
    return rows


if __name__ == "__main__":
    main(settings_mod.get())
