"""Issue 11, items 15 (Voilà part) and 17, against a real Voilà: a Host that is not local is
refused (DNS rebinding), and template paths that are not a template's static file are 404, not 500."""

from __future__ import annotations

import dataclasses

import httpx
import nbformat
import pytest

from conftest import free_port
from starbox import jupyter

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def voila(starbox, tmp_path_factory):
    root = tmp_path_factory.mktemp("voila-apps")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, str(root / "hello.ipynb"))
    settings = dataclasses.replace(starbox, voila_port=free_port())
    child = jupyter.voila_child(settings, preheat=False, root=root, name="voila-hardening")
    child.start(settings, timeout=120)
    try:
        yield settings
    finally:
        child.stop()


def get(settings, path: str, host: str | None = None) -> httpx.Response:
    headers = {"Host": host} if host else {}
    return httpx.get(f"http://127.0.0.1:{settings.voila_port}{path}", headers=headers, timeout=30)


def test_a_foreign_host_is_refused(voila):
    port = voila.voila_port
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", f"localhost.evil.example:{port}"):
        for path in ("/", "/voila/render/hello.ipynb", "/starbox/pools", "/voila/static/voila.js",
                     "/api/kernels/00000000-0000-0000-0000-000000000000"):
            r = get(voila, path, host)
            assert r.status_code == 403, (host, path, r.status_code)
            assert "non-local 'Host'" in r.text, (host, path, r.text[:200])
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}", "127.0.0.2"):
        r = get(voila, "/", host)
        assert r.status_code == 200 and "hello.ipynb" in r.text, (host, r.status_code)
    assert get(voila, "/starbox/pools").status_code == 200


def test_template_paths_outside_a_template_are_404(voila):
    for path in ("/voila/templates/..%2f..", "/voila/templates/..%2f..%2f..%2fetc%2fpasswd",
                 "/voila/templates/lab", "/voila/templates/lab/other/x.js",
                 "/voila/templates/lab/static/..%2f..%2f..%2f..%2fetc%2fpasswd", "/voila/templates/%2e%2e/static/x"):
        r = get(voila, path)
        assert r.status_code == 404, (path, r.status_code, r.text[:200])
    # A template's own static file still comes.
    assert get(voila, "/voila/templates/lab/static/voila.js").status_code != 500
