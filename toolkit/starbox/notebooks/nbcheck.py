"""`starbox nbcheck FILE…`: is a contributed notebook ready for a pull request?

The rules are Data Lab's CONTRIBUTING rules (see lessons/05_Contrib/CONTRIBUTING.md), checked:

* header: the first cell is code and sets ``__author__`` (a name with an e-mail),
  ``__version__`` (a yyyymmdd date), ``__datasets__`` (schemas or schema.table names that exist in
  this appliance, from tbl_stat and TAP_SCHEMA) and ``__keywords__`` (from keywords.txt);
* structure: a title and the template's Goals, Summary, Disclaimer & attribution and Resources
  sections;
* secrets: no token, password or key in any cell's source or output;
* outputs: cleared;
* location: its own folder, ``05_Contrib/<Rubric>/<Case>/``, with only small auxiliary files,
  and a name the harness does not skip;
* run: a clean run top to bottom through the harness, against this appliance.

Each problem is one line that says how to fix it.
"""

from __future__ import annotations

import ast
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Iterable

from starbox.settings import Settings

HEADER_FIELDS = ("__author__", "__version__", "__datasets__", "__keywords__")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
BIG_FILE_MB = 20
CLEAR_HINT = (
    "clear them (JupyterLab: Edit > Clear Outputs of All Cells, then save; or "
    "`jupyter nbconvert --clear-output --inplace FILE`)"
)
SECTIONS = (  # (what the heading says, how to spell it in the fix)
    (re.compile(r"\bgoals?\b", re.I), "# Goals"),
    (re.compile(r"\bsummary\b", re.I), "# Summary"),
    (re.compile(r"\battribution\b|\bdisclaimer\b", re.I), "# Disclaimer & attribution"),
    (re.compile(r"\bresources?\b|\breferences?\b", re.I), "# Resources and references"),
)


@dataclass(frozen=True)
class SecretPattern:
    what: str
    regex: re.Pattern[str]
    in_source: bool = True
    in_output: bool = True


SECRETS = (
    SecretPattern(
        "a Starbox/Data Lab login token", re.compile(r"[A-Za-z0-9_@+-][\w.@+-]*\.\d+\.\d+\.\$1\$[^\s'\"\\,;)]{22,}")
    ),
    SecretPattern(
        "an X-DL-Password header with a password", re.compile(r"X-DL-Password['\"]?\s*[:=]\s*(['\"])[^'\"\n]+\1", re.I)
    ),
    SecretPattern(
        "an X-DL-Password header with a password", re.compile(r"X-DL-Password:\s+[^\s'\"]+", re.I), in_source=False
    ),
    SecretPattern(
        "a password literal", re.compile(r"\b(?:password|passwd|passwort|pwd)\s*[=:]\s*(['\"])[^'\"\n]+\1", re.I)
    ),
    SecretPattern(
        "a password passed to login()",
        re.compile(
            r"\blogin\(\s*(?:user\s*=\s*)?(['\"])[^'\"\n]+\1\s*,\s*(?:password\s*=\s*)?"
            r"(['\"])[^'\"\n]+\2"
        ),
    ),
    SecretPattern(
        "a token or key literal",
        re.compile(r"\b(?:token|api_?key|secret|access_key)\s*=\s*(['\"])[\w\-$.]{16,}\1", re.I),
    ),
    SecretPattern("a GitHub token", re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}")),
    SecretPattern("an AWS access key", re.compile(r"\bAKIA[0-9A-Z]{16}\b")),
    SecretPattern("a private key", re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")),
)
SECRET_FIX = (
    "remove it, and log in at run time with ac.login(input('user: '), getpass('password: ')) "
    "or rely on the appliance's login (STARBOX_TOKEN)"
)


@dataclass
class Report:
    path: Path
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- the lists the header is checked against ------------------------------------------------------


def keywords_file(notebook: Path, settings: Settings) -> Path | None:
    """keywords.txt from the lessons tree the notebook sits in, else this project's."""
    for folder in notebook.resolve().parents:
        if (folder / "keywords.txt").is_file():
            return folder / "keywords.txt"
    fallback = settings.project_root / "lessons" / "keywords.txt"
    return fallback if fallback.is_file() else None


def read_keywords(path: Path) -> set[str]:
    words = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip().lower()
        if line:
            words.add(line)
    return words


def available_datasets(settings: Settings) -> set[str] | None:
    """Schemas and schema.table names users can query (anonymously through the service, else on
    an admin connection); None when the appliance cannot be reached."""
    sql = "SELECT schema, tbl_name FROM tbl_stat"
    try:
        import csv
        import io

        import httpx

        r = httpx.get(
            f"{settings.service_url}/query/query",
            params={"sql": sql, "ofmt": "csv"},
            headers={"X-DL-AuthToken": "anonymous.0.0.anon_access"},
            timeout=20,
        )
        if r.status_code == 200:
            rows = list(csv.reader(io.StringIO(r.text)))[1:]
            names = {row[0].lower() for row in rows if row}
            names |= {f"{row[0]}.{row[1]}".lower() for row in rows if len(row) > 1}
            if names:
                return names
    except Exception:
        pass
    try:
        from starbox import database
        from starbox.catalogs import registry

        with database.connect_admin(settings) as conn:
            rows = registry.dataset_rows(conn)
        return {r[0].lower() for r in rows} | {f"{r[0]}.{r[1]}".lower() for r in rows}
    except Exception:
        return None


# --- the checks -----------------------------------------------------------------------------------


def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def parse_header(source: str) -> tuple[dict, str | None]:
    """The four fields' values from the header cell; and a syntax problem, if any."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return {}, f"line {exc.lineno}: {exc.msg}"
    values: dict = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in HEADER_FIELDS:
                try:
                    value = ast.literal_eval(node.value)
                except ValueError:
                    value = ValueError  # not a literal
                # Data Lab's template has `__keywords__ = [''],`: a list inside a tuple.
                if isinstance(value, tuple) and len(value) == 1 and isinstance(value[0], (list, tuple)):
                    value = value[0]
                values[name] = value
    return values, None


def _string_list(value) -> list[str] | None:
    if isinstance(value, str):
        return [s.strip() for s in value.split(",")]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return None


def check_header(nb, settings: Settings, path: Path, datasets: set[str] | None | type) -> list[str]:
    cells = nb.get("cells", [])
    first = cells[0] if cells else None
    if first is None or first.get("cell_type") != "code" or "__author__" not in _source(first):
        where = next(
            (i for i, c in enumerate(cells) if c.get("cell_type") == "code" and "__author__" in _source(c)), None
        )
        if where is not None:
            return [f"header: the header is cell {where}; move it to the top (it must be the first cell)"]
        return [
            "header: the first cell must be a code cell setting __author__, __version__, __datasets__ "
            "and __keywords__; copy it from 05_Contrib/StarboxNotebookTemplate.ipynb and fill it in"
        ]
    values, syntax = parse_header(_source(first))
    if syntax:
        return [f"header: the first cell is not valid Python ({syntax}); fix it (see the template's header)"]
    problems = []
    for name in HEADER_FIELDS:
        if name not in values:
            example = {
                "__author__": "'Jane Author <jane@example.org>'",
                "__version__": "'20250301'",
                "__datasets__": "['hipparcos']",
                "__keywords__": "['tutorial']",
            }[name]
            problems.append(f"header: {name} is missing; add e.g. {name} = {example}")
        elif values[name] is ValueError:
            problems.append(
                f"header: {name} must be a plain literal (a string or a list of strings), "
                "not an expression; write the value out"
            )

    author = values.get("__author__")
    if "__author__" in values and author is not ValueError:
        if not isinstance(author, str) or not author.strip():
            problems.append(
                "header: __author__ must be one string with your name and e-mail; write e.g. "
                "'Jane Author <jane@example.org>'"
            )
        elif not EMAIL.search(author):
            problems.append(
                f"header: __author__ {author!r} has no e-mail; write it as 'Name <you@example.org>' "
                "(several authors separated by commas)"
            )

    version = values.get("__version__")
    if "__version__" in values and version is not ValueError:
        text = str(version).strip() if isinstance(version, (str, int)) else ""
        try:
            when = datetime.strptime(text, "%Y%m%d") if re.fullmatch(r"\d{8}", text) else None
        except ValueError:
            when = None
        if when is None:
            problems.append(
                f"header: __version__ {version!r} is not a yyyymmdd date; write e.g. "
                f"__version__ = '{datetime.now():%Y%m%d}' (the day of this version)"
            )
        elif when > datetime.now() + timedelta(days=1):
            problems.append(f"header: __version__ {text} is in the future; use today's date, '{datetime.now():%Y%m%d}'")

    ds = values.get("__datasets__")
    if "__datasets__" in values and ds is not ValueError:
        names = _string_list(ds)
        if names is None:
            problems.append("header: __datasets__ must be a list of strings; write e.g. ['hipparcos.main', 'gaia_dr3']")
        elif any(not n for n in names):
            problems.append(
                "header: __datasets__ has an empty name; list the schemas or tables the notebook "
                "queries (use [] if it queries none)"
            )
        elif datasets is None:
            problems.append(
                "header: cannot check __datasets__ because the appliance is not reachable; "
                "start it (`starbox up`) and check again"
            )
        else:
            for n in names:
                if n.lower() not in datasets:
                    known = sorted(d for d in datasets if "." not in d)
                    problems.append(
                        f"header: dataset {n!r} is not in this appliance; use a schema or "
                        f"schema.table that exists ({', '.join(known)}) or load it first "
                        "(`starbox catalog load`)"
                    )

    kw = values.get("__keywords__")
    if "__keywords__" in values and kw is not ValueError:
        words = _string_list(kw)
        kfile = keywords_file(path, settings)
        if words is None:
            problems.append("header: __keywords__ must be a list of strings; write e.g. ['tutorial', 'sql']")
        elif not [w for w in words if w]:
            problems.append("header: __keywords__ is empty; pick a few from keywords.txt")
        elif kfile is None:
            problems.append(
                "header: cannot check __keywords__: no keywords.txt above the notebook or in "
                "this project's lessons/; check out the lessons repository and work inside it"
            )
        else:
            allowed = read_keywords(kfile)
            for w in words:
                if not w:
                    problems.append("header: __keywords__ has an empty keyword; remove it")
                elif w.lower() not in allowed:
                    problems.append(
                        f"header: keyword {w!r} is not in {kfile}; pick one from that list, or "
                        "add it there in the same pull request"
                    )
    return problems


def check_structure(nb) -> list[str]:
    headings = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            headings += [ln.lstrip("#").strip() for ln in _source(cell).splitlines() if ln.startswith("#")]
    problems = []
    titled = any(
        c.get("cell_type") == "markdown" and re.match(r"^#\s+\S", _source(c).lstrip()) for c in nb.get("cells", [])[1:3]
    )
    if not titled:
        problems.append(
            "structure: the cell after the header must be the title; make it a markdown "
            "'# Title' with the authors in italics below it"
        )
    for regex, spelling in SECTIONS:
        if not any(regex.search(h) for h in headings):
            problems.append(f"structure: no '{spelling}' section; add it as in the template")
    return problems


def _outputs_text(cell) -> Iterable[str]:
    for out in cell.get("outputs", []) or []:
        if "text" in out:
            yield "".join(out["text"]) if isinstance(out["text"], list) else str(out["text"])
        for value in (out.get("data") or {}).values():
            if isinstance(value, list):
                yield "".join(value)
            elif isinstance(value, str) and len(value) < 5_000_000:
                yield value
        if out.get("traceback"):
            yield "\n".join(out["traceback"])
        if out.get("evalue"):
            yield str(out["evalue"])


def _mask(text: str) -> str:
    text = text.strip()
    return (text[:14] + "…") if len(text) > 14 else text[:4] + "…"


def check_secrets(nb) -> list[str]:
    problems = []
    for i, cell in enumerate(nb.get("cells", [])):
        for where, texts in (("source", [_source(cell)]), ("output", list(_outputs_text(cell)))):
            seen = set()
            for text in texts:
                for pattern in SECRETS:
                    if (where == "source" and not pattern.in_source) or (where == "output" and not pattern.in_output):
                        continue
                    m = pattern.regex.search(text)
                    if m and pattern.what not in seen:
                        seen.add(pattern.what)
                        problems.append(
                            f"secrets: cell {i} has {pattern.what} in its {where} "
                            f"({_mask(m.group(0))}); {SECRET_FIX}"
                            + ("; then clear the outputs" if where == "output" else "")
                        )
    return problems


def check_outputs(nb) -> list[str]:
    with_output = [
        i
        for i, c in enumerate(nb.get("cells", []))
        if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count") is not None)
    ]
    if not with_output:
        return []
    shown = ", ".join(map(str, with_output[:10])) + (" …" if len(with_output) > 10 else "")
    return [f"outputs: {len(with_output)} cell(s) have outputs or execution counts (cells {shown}); {CLEAR_HINT}"]


def check_location(path: Path) -> list[str]:
    path = path.resolve()
    problems = []
    if "template" in path.name.lower():
        problems.append(
            f"name: rename {path.name} to say what the notebook does; files named *Template* "
            "are skipped by `starbox nbtest`"
        )
    parts = path.parts
    if len(parts) < 4 or parts[-4] != "05_Contrib":
        example = f"05_Contrib/<Rubric>/<Case>/{path.name}; e.g. 05_Contrib/Galactic/{path.stem}/{path.name}"
        problems.append(f"location: put the notebook in its own folder, {example}")
        return problems
    case = path.parent
    others = sorted(p.name for p in case.glob("*.ipynb") if p.name != path.name)
    if others:
        problems.append(
            f"location: {case.name}/ also holds {', '.join(others)}; give each notebook its own "
            f"folder under 05_Contrib/{parts[-3]}/"
        )
    for p in sorted(case.rglob("*")):
        if p.is_file() and ".ipynb_checkpoints" not in p.parts and p.stat().st_size > BIG_FILE_MB * 1024 * 1024:
            size = p.stat().st_size / 1024 / 1024
            problems.append(
                f"location: {p.relative_to(case)} is {size:.0f} MB; keep auxiliary files under "
                f"{BIG_FILE_MB} MB and read big data from the appliance (a catalog or storage)"
            )
    return problems


def _run_problem(r) -> str:
    from .runner import DEAD_KERNEL, FAIL, NO_KERNEL, TIMEOUT

    where = f"cell {r.failed_cell} ({r.failed_source})" if r.failed_cell is not None else r.failed_source or "it"
    if r.status == FAIL:
        return (
            f"run: {where} failed with {r.error}; fix it so the notebook runs top to bottom "
            f"(`starbox nbtest {r.path}` shows the traceback)"
        )
    if r.status == TIMEOUT:
        return f"run: {where} was still running at the cell timeout; make it faster (query less data, use an index)"
    if r.status == DEAD_KERNEL:
        return f"run: the kernel died in {where} (out of memory?); use less memory (fewer rows, smaller arrays)"
    if r.status == NO_KERNEL:
        return f"run: {r.error}; set the notebook's kernel to the appliance's Python 3 (python3)"
    return f"run: the notebook could not be run ({r.error}); `starbox nbtest {r.path}` shows why"


def check(
    paths: Iterable[str | os.PathLike[str]],
    settings: Settings,
    *,
    run: bool = True,
    timeout: int | None = 600,
    jobs: int = 1,
) -> list[Report]:
    """Check each notebook; every problem is a one-line string in its Report."""
    from . import runner
    from .discover import Target

    reports: list[Report] = []
    notebooks = {}
    datasets: set[str] | None | type = ...
    for raw in paths:
        path = Path(raw)
        rep = Report(path)
        reports.append(rep)
        if not path.is_file():
            rep.problems.append(f"file: {path} does not exist; give the path of a .ipynb file")
            continue
        try:
            nb = runner.load_notebook(path)
        except runner.BadNotebook as exc:
            rep.problems.append(f"file: {exc}; save it again from JupyterLab")
            continue
        except OSError as exc:
            rep.problems.append(f"file: cannot read it ({exc.strerror}); check the path and its permissions")
            continue
        if datasets is ...:
            datasets = available_datasets(settings)
        rep.problems += check_header(nb, settings, path, datasets)
        rep.problems += check_structure(nb)
        rep.problems += check_secrets(nb)
        rep.problems += check_outputs(nb)
        rep.problems += check_location(path)
        notebooks[path.resolve()] = rep

    if run and notebooks:
        with tempfile.TemporaryDirectory(prefix="starbox-nbcheck-") as keep:
            opts = runner.Options(keep_dir=Path(keep), kernels=runner.available_kernels(), timeout=timeout or None)
            targets = [Target(p, p.name) for p in notebooks]
            results, _ = runner.run_all(targets, opts, jobs=max(1, jobs))
            for target, result in zip(targets, results):
                if not result.passed:
                    notebooks[target.path].problems.append(_run_problem(result))
    return reports


def main_lines(reports: list[Report]) -> list[str]:
    lines = []
    for rep in reports:
        if rep.ok:
            lines.append(f"{rep.path}: OK")
        lines += [f"{rep.path}: {p}" for p in rep.problems]
    bad = [r for r in reports if not r.ok]
    total = sum(len(r.problems) for r in bad)
    if bad:
        lines.append(f"{total} problem(s) in {len(bad)} of {len(reports)} notebook(s)")
    else:
        lines.append(f"{len(reports)} notebook(s) ready to contribute")
    return lines


def to_json(reports: list[Report]) -> str:
    return json.dumps([{"path": str(r.path), "ok": r.ok, "problems": r.problems} for r in reports], indent=1)
