"""`starbox notebooks status|publish|rollback|webhook`, `starbox getlatest` and `starbox nbcheck`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from starbox import keys
from starbox import settings as settings_mod

notebooks_app = typer.Typer(
    help="Published lessons (notebooks-latest): status, publish, rollback.", no_args_is_help=True
)
console = Console(highlight=False)


def _settings():
    return settings_mod.get()


@notebooks_app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """What is live, the versions kept, and how the last publish went (and why it failed)."""
    from . import publish

    info = publish.status(_settings())
    if as_json:
        print(json.dumps(info, indent=1))
        return
    console.print(
        f"source   {escape(info['source'])} (branch {escape(info['branch'])}; "
        f"{'tested before publishing' if info['test'] else 'not tested: lessons_test is off'})"
    )
    console.print(f"live     {escape(info['live'] or 'nothing published yet')}  ({escape(info['path'])})")
    if info["running"]:
        r = info["running"]
        console.print(f"[yellow]running  a publish ({escape(r['trigger'])}) since {r['since']}[/]")
    last = info["last"]
    if last and last.get("result"):
        colour = {"published": "green", "failed": "red"}.get(last["result"], "default")
        console.print(
            f"last     [{colour}]{last['result']}[/] {last.get('finished', '')} "
            f"({escape(last.get('trigger', ''))}): {escape(last.get('reason', ''))}",
            soft_wrap=True,
        )
        for f in last.get("failures", [])[:20]:
            cell = f" cell {f['cell']}" if f.get("cell") is not None else ""
            console.print(
                f"         [red]{f['status']}[/] {escape(f['notebook'])}{cell}: "
                f"{escape((f.get('error') or '').splitlines()[0] if f.get('error') else '')}",
                soft_wrap=True,
            )
    if last and last.get("rollback"):
        rb = last["rollback"]
        console.print(f"rollback {rb['at']}: {escape(str(rb['from']))} -> {escape(rb['to'])}")
    if info["versions"]:
        console.print("versions (* live; `starbox notebooks rollback --to VERSION`):")
        for v in reversed(info["versions"]):
            details = "  ".join(
                x
                for x in (
                    (v.get("commit") or "")[:12],
                    v.get("published", ""),
                    v.get("trigger", ""),
                    v.get("tested", ""),
                )
                if x
            )
            console.print(f"  {'*' if v['live'] else ' '} {v['version']}  [dim]{escape(details)}[/]", soft_wrap=True)
    console.print(f"log      {escape(info['log'])}", soft_wrap=True)
    console.print(f"webhook  POST {escape(info['webhook'])} (secret in {escape(info['secret_file'])})", soft_wrap=True)


@notebooks_app.command("publish")
def publish_cmd(
    test: Annotated[
        Optional[bool],
        typer.Option(
            "--test/--no-test", help="Run the harness first (default: the lessons_test setting).", show_default=False
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Publish even if that commit is already live.")] = False,
    repo: Annotated[Optional[str], typer.Option(help="Another repository (path or URL) for this run.")] = None,
    branch: Annotated[Optional[str], typer.Option(help="Another branch for this run.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Notebooks tested in parallel.")] = 2,
    timeout: Annotated[int, typer.Option(min=0, help="Seconds one cell may run (0: no limit).")] = 600,
) -> None:
    """Fetch the lessons repository, test it, and swap it in as notebooks-latest (what the webhook does)."""
    from . import publish

    s = publish.with_overrides(_settings(), repo, branch)
    outcome = publish.publish(
        s,
        test=test,
        force=force,
        jobs=jobs,
        timeout=timeout or None,
        trigger="starbox notebooks publish",
        echo=lambda m: console.print(escape(m), soft_wrap=True),
    )
    colour = {"published": "green", "failed": "red"}.get(outcome.status, "yellow")
    console.print(f"[{colour}]{outcome.status}[/]: {escape(outcome.reason)}", soft_wrap=True)
    if not outcome.ok:
        raise typer.Exit(1)


@notebooks_app.command("rollback")
def rollback_cmd(
    to: Annotated[
        Optional[str], typer.Option(help="A version from `status` (default: the one live before the current one).")
    ] = None,
) -> None:
    """Make the previous version live again."""
    from . import publish

    before, after = publish.rollback(_settings(), to)
    console.print(f"rolled back: {escape(str(before))} -> [green]{escape(after)}[/]")


@notebooks_app.command("webhook")
def webhook_cmd(
    show_secret: Annotated[bool, typer.Option("--show-secret", help="Print the secret too.")] = False,
) -> None:
    """How to point a GitHub webhook at this appliance."""
    from . import sources

    s = _settings()
    secret = keys.webhook_secret(s)  # made now if missing, so it can be pasted into GitHub
    console.print(f"Payload URL   {s.service_url}/hooks/notebooks  (must be reachable from GitHub)")
    console.print("Content type  application/json")
    console.print(
        f"Secret        {secret if show_secret else '(--show-secret prints it)'}  "
        f"[dim]{keys.path(s, keys.WEBHOOK_SECRET)}[/]"
    )
    console.print("Events        just the push event")
    console.print(f"Publishes     pushes to {escape(sources.source(s))} branch {s.lessons_branch}")


def getlatest(
    targetdir: Annotated[
        Optional[Path],
        typer.Argument(
            help="Where to copy the lessons (default ~/notebooks; in the appliance's JupyterLab, its lessons/ folder).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Copy the latest lessons into a folder of your own; files you changed are kept, never overwritten."""
    from .getlatest import getlatest as run

    result = run(_settings(), targetdir)
    for line in result.lines():
        console.print(escape(line), soft_wrap=True)


def nbcheck(
    files: Annotated[list[Path], typer.Argument(help="Notebooks to check.", show_default=False)],
    run: Annotated[bool, typer.Option("--run/--no-run", help="Run each notebook through the harness.")] = True,
    timeout: Annotated[int, typer.Option(min=0, help="Seconds one cell may run (0: no limit).")] = 600,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Notebooks run in parallel.")] = 1,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check contributed notebooks against the CONTRIBUTING rules; one line per problem, with its fix."""
    from . import nbcheck as checker

    reports = checker.check(files, _settings(), run=run, timeout=timeout or None, jobs=jobs)
    if as_json:
        print(checker.to_json(reports))
    else:
        for line in checker.main_lines(reports):
            console.print(escape(line), soft_wrap=True)
    if any(not r.ok for r in reports):
        raise typer.Exit(1)
