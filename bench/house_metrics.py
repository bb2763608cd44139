"""The house in numbers (issue 12's before and after): big files, long functions, import cycles,
SQL literals per module, and which modules write SQL against each service table.

    python -m bench.house_metrics [toolkit/starbox]
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from pathlib import Path

SQL_START = re.compile(
    r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH|GRANT|REVOKE|COMMENT ON|"
    r"COPY|TRUNCATE|SET LOCAL|SHOW|EXPLAIN|LOCK)\b",
    re.I,
)
TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN|TABLE)\s+((?:starbox|public|tap_schema|ivoa)\.[a-z_]+)", re.I)


def modules(root: Path) -> dict[str, Path]:
    package = root.name
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    assert package in out
    return out


def _imports(tree: ast.Module, name: str, known: set[str], top_only: bool) -> set[str]:
    found = set()
    nodes = tree.body if top_only else list(ast.walk(tree))
    for node in nodes:
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = name.split(".")[: -node.level] if not name.endswith("__init__") else name.split(".")
                base = ".".join(pkg + ([base] if base else []))
            # `from pkg import sub` depends on pkg.sub (its package runs first, but needs nothing back)
            subs = [f"{base}.{a.name}" for a in node.names]
            targets = [s for s in subs if s in known] or [base]
            if len(targets) < len(subs):
                targets.append(base)
        else:
            continue
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def report(root: Path) -> dict:
    mods = modules(root)
    known = set(mods)
    lines, long_functions, sql_per_module = {}, [], {}
    owners: dict[str, set[str]] = defaultdict(set)
    top_graph, all_graph = {}, {}
    for name, path in mods.items():
        text = path.read_text()
        tree = ast.parse(text)
        lines[name] = len(text.splitlines())
        top_graph[name] = _imports(tree, name, known, top_only=True)
        all_graph[name] = _imports(tree, name, known, top_only=False)
        n_sql = 0
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append((f"{name}.{node.name}", length))
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if SQL_START.match(node.value):
                    n_sql += 1
                for table in TABLE.findall(node.value):
                    owners[table.lower()].add(name)
        if n_sql:
            sql_per_module[name] = n_sql
    return {
        "modules": len(mods),
        "lines": sum(lines.values()),
        "files_over_500": sorted(((n, c) for n, c in lines.items() if c > 500), key=lambda x: -x[1]),
        "functions_over_60": sorted(long_functions, key=lambda x: -x[1]),
        "cycles_top_level": cycles(top_graph),
        "cycles_with_lazy_imports": cycles(all_graph),
        "sql_literals": dict(sorted(sql_per_module.items(), key=lambda x: -x[1])),
        "table_writers": {t: sorted(m) for t, m in sorted(owners.items())},
    }


def main(argv: list[str] | None = None) -> None:
    args = argv if argv is not None else sys.argv[1:]
    root = Path(args[0] if args else Path(__file__).resolve().parents[1] / "toolkit" / "starbox")
    r = report(root)
    print(f"{r['modules']} modules, {r['lines']:,} lines")
    print(f"files over 500 lines ({len(r['files_over_500'])}):", ", ".join(f"{n} {c}" for n, c in r["files_over_500"]))
    print(
        f"functions over 60 lines ({len(r['functions_over_60'])}):",
        ", ".join(f"{n} {c}" for n, c in r["functions_over_60"]),
    )
    print(f"import cycles, module level ({len(r['cycles_top_level'])}):", r["cycles_top_level"])
    print(
        f"import cycles, lazy imports included ({len(r['cycles_with_lazy_imports'])}):", r["cycles_with_lazy_imports"]
    )
    print(
        f"SQL literals ({sum(r['sql_literals'].values())} in {len(r['sql_literals'])} modules):",
        ", ".join(f"{n} {c}" for n, c in r["sql_literals"].items()),
    )
    print("modules that name each table in SQL:")
    for table, mods in r["table_writers"].items():
        print(f"  {table}: {', '.join(mods)}")


if __name__ == "__main__":
    main()
