"""The toolkit never loads the server (issue 12, item 1): a kernel that imports ac, qc and sc
pays for httpx and nothing of the service, database or accounts code."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

STARBOX = Path(__file__).resolve().parents[1] / "toolkit" / "starbox"
CLIENT_SIDE = [STARBOX / "authClient.py", STARBOX / "queryClient.py", STARBOX / "storeClient.py",
               STARBOX / "inprocess.py", STARBOX / "convert.py", *sorted((STARBOX / "client").glob("*.py"))]
# What the client side may import from the package: itself, and the light shared modules.
ALLOWED = {"starbox.__version__", "starbox.settings", "starbox.errors", "starbox.keys", "starbox.storeClient"}
SERVER_MODULES = ["psycopg", "psycopg_pool", "argon2", "fastapi", "starlette", "pyarrow", "numpy", "pandas",
                  "starbox.accounts", "starbox.database", "starbox.query", "starbox.service", "starbox.jobs"]


def test_importing_the_toolkit_leaves_the_server_out():
    code = ("import json, sys\n"
            "from starbox import authClient as ac, queryClient as qc, storeClient as sc\n"
            "import starbox.inprocess, starbox.convert\n"
            f"print(json.dumps([m for m in {SERVER_MODULES!r} if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [], f"the toolkit import loaded {out.stdout.strip()}"


def _module_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return names


def _allowed(name: str) -> bool:
    return name in ALLOWED or name.startswith(("starbox.client", "starbox.settings.", "starbox.errors."))


@pytest.mark.parametrize("path", CLIENT_SIDE, ids=lambda p: str(p.relative_to(STARBOX)))
def test_the_client_side_imports_no_server_module(path):
    starbox = {n for n in _module_level_imports(path) if n.startswith("starbox.")}
    foreign = sorted(n for n in starbox if not _allowed(n))
    assert foreign == [], f"{path.name} imports server code at module level: {foreign}"


def test_the_server_still_finds_the_chunk_reader():
    from starbox.client.chunks import ChunkReader
    from starbox.query import formats

    assert formats.ChunkReader is ChunkReader
    assert ChunkReader([b"ab", b"", b"cd"]).read() == b"abcd"
