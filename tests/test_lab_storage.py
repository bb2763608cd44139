"""The user's Starbox storage as the folder storage/ in JupyterLab (starbox.jupyter.storage_folder).

A real JupyterLab (the personal one, as `starbox up` starts it) in front of a real service with a
2 MB quota and a 1 MB cap on one upload: what the lab saves is what `sc.ls` / `sc.get` see, what
`sc.put` stores the lab lists, and the service's limits hold for both, leaving nothing behind.
"""

from __future__ import annotations

import base64
import dataclasses

import httpx
import pytest
from conftest import free_port, start_service
from starbox import jupyter, keys, storage_home
from starbox import storeClient as sc

pytestmark = pytest.mark.system
MB = 1024 * 1024


@pytest.fixture(scope="module")
def lab(service):
    s = dataclasses.replace(service.settings, service_port=free_port(), jupyter_port=free_port())
    proc = start_service(s, STARBOX_STORAGE_QUOTA_MB="2", STARBOX_MAX_UPLOAD_MB="1")
    child = None
    try:
        child = jupyter.lab_child(s)
        jupyter.ensure_workspace(s)
        jupyter.ensure_local_user(s)
        tree = storage_home.create(s, s.local_user)
        for old in tree.iterdir():  # a clean storage for the quota's sake
            if old.is_file():
                old.unlink()
        child.start(s, timeout=120)
        token = keys.local_token_file(s).read_text().strip()
        sc.set_svc_url(f"{s.service_url}/storage")
        with httpx.Client(base_url=f"http://127.0.0.1:{s.jupyter_port}", timeout=60) as http:
            http.get("/lab")
            http.headers["X-XSRFToken"] = http.cookies["_xsrf"]
            yield s, http, token, tree
    finally:
        sc.set_svc_url(f"{service.settings.service_url}/storage")
        if child:
            child.stop()
        proc.terminate()
        proc.wait(30)


def _put_text(http, path, text):
    return http.put(f"/api/contents/{path}", json={"type": "file", "format": "text", "content": text})


def test_the_home_lists_storage_and_what_the_lab_saves_is_in_storage(lab, tmp_path):
    s, http, token, tree = lab
    home = http.get("/api/contents").json()
    entry = next(i for i in home["content"] if i["name"] == "storage")
    assert entry["type"] == "directory" and entry["writable"] is True

    assert _put_text(http, "storage/notes.txt", "Hydra II: r_h 68 pc\n").status_code == 201
    assert "notes.txt" in sc.ls("vos://", token=token).split(",")
    assert sc.get(token=token, fr="vos://notes.txt", to="", verbose=False) == "Hydra II: r_h 68 pc\n"

    # ...and the other way round: sc.put, then the lab lists and reads it (binary as base64)
    local = tmp_path / "flux.bin"
    local.write_bytes(bytes(range(256)))
    assert sc.put(token=token, fr=str(local), to="vos://flux.bin", verbose=False) == ["OK"]
    listing = {i["name"]: i for i in http.get("/api/contents/storage").json()["content"]}
    assert listing["flux.bin"]["size"] == 256 and listing["notes.txt"]["type"] == "file"
    got = http.get("/api/contents/storage/flux.bin").json()
    assert got["format"] == "base64" and base64.b64decode(got["content"]) == bytes(range(256))

    # folders, renames and deletes are the service's too
    assert http.put("/api/contents/storage/results", json={"type": "directory"}).status_code == 201
    moved = http.patch("/api/contents/storage/notes.txt", json={"path": "storage/results/notes.txt"})
    assert moved.status_code == 200, moved.text
    assert sc.ls("vos://results", token=token) == "notes.txt"
    assert http.delete("/api/contents/storage/results/notes.txt").status_code == 204
    assert http.delete("/api/contents/storage/results").status_code == 204
    assert http.delete("/api/contents/storage/flux.bin").status_code == 204
    assert sorted(p.name for p in tree.iterdir() if not p.name.startswith(".")) == ["public", "tmp"]


def test_a_notebook_in_storage_opens_saves_and_keeps_its_checkpoint_in_the_home(lab):
    s, http, token, tree = lab
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# In storage", "id": "a1"}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    r = http.put("/api/contents/storage/work.ipynb", json={"type": "notebook", "content": nb})
    assert r.status_code == 201, r.text
    opened = http.get("/api/contents/storage/work.ipynb").json()
    assert opened["type"] == "notebook" and opened["content"]["cells"][0]["source"] == "# In storage"
    checkpoint = http.post("/api/contents/storage/work.ipynb/checkpoints")
    assert checkpoint.status_code == 201, checkpoint.text
    nb["cells"][0]["source"] = "# Changed"
    assert http.put("/api/contents/storage/work.ipynb", json={"type": "notebook", "content": nb}).status_code == 200
    cid = checkpoint.json()["id"]
    assert http.post(f"/api/contents/storage/work.ipynb/checkpoints/{cid}").status_code == 204
    assert "# In storage" in (tree / "work.ipynb").read_text()
    assert not any(p.name.endswith("-checkpoint.ipynb") for p in tree.rglob("*"))  # never in storage
    # a file moves out of storage into the home, and back
    assert http.patch("/api/contents/storage/work.ipynb", json={"path": "work-home.ipynb"}).status_code == 200
    assert not (tree / "work.ipynb").exists()
    assert http.patch("/api/contents/work-home.ipynb", json={"path": "storage/work.ipynb"}).status_code == 200
    assert (tree / "work.ipynb").exists()
    assert http.delete("/api/contents/storage/work.ipynb").status_code == 204


def test_the_quota_and_the_upload_cap_hold_for_the_lab(lab, tmp_path):
    s, http, token, tree = lab
    # one save above the 1 MB upload cap: refused in the service's words, nothing stored
    r = _put_text(http, "storage/big.txt", "x" * (MB + 10))
    assert r.status_code == 413 and "1 MB allowed for one upload" in r.json()["message"], r.text
    assert not (tree / "big.txt").exists()
    # a chunked upload (JupyterLab's way for big files) is stored whole at the end, or not at all
    half = base64.b64encode(b"y" * (3 * MB // 4)).decode()
    first = http.put("/api/contents/storage/chunked.bin",
                     json={"type": "file", "format": "base64", "content": half, "chunk": 1})
    assert first.status_code in (200, 201) and not (tree / "chunked.bin").exists()
    last = http.put("/api/contents/storage/chunked.bin",
                    json={"type": "file", "format": "base64", "content": half, "chunk": -1})
    assert last.status_code == 413 and not (tree / "chunked.bin").exists()
    assert list((s.home / "lab" / "uploads").iterdir()) == []
    # fill the quota from the toolkit; then the lab's save is refused with the quota's message
    for i in range(2):
        local = tmp_path / f"f{i}.bin"
        local.write_bytes(b"z" * (9 * MB // 10))
        assert sc.put(token=token, fr=str(local), to=f"vos://f{i}.bin", verbose=False) == ["OK"]
    r = _put_text(http, "storage/more.txt", "w" * (MB // 2))
    assert r.status_code == 413 and "quota exceeded" in r.json()["message"], r.text
    assert not (tree / "more.txt").exists()
    for i in range(2):
        assert http.delete(f"/api/contents/storage/f{i}.bin").status_code == 204


def test_bad_storage_paths_are_clear_refusals(lab):
    s, http, token, tree = lab
    missing = http.get("/api/contents/storage/nope.txt")
    assert missing.status_code == 404 and "nope.txt" in missing.text
    assert http.delete("/api/contents/storage").status_code == 400
    assert http.get("/api/contents/storage/notes.txt", params={"type": "directory"}).status_code in (400, 404)
