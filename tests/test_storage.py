"""/storage against the live service: every call, signed URLs, atomic uploads, quotas, sharing,
escapes (.., absolute paths, planted links), anonymous access, and bad input never giving 500."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

from conftest import free_port, settings_env
from fetching import fetching_service  # noqa: F401 (a fixture)
from starbox import accounts, storage_home
from starbox.accounts import User
from starbox.errors import Forbidden, StarboxError, TooLarge
from starbox.storage import paths, signing
from starbox.storage.ops import NODE_EXISTS, NODE_MISSING

pytestmark = pytest.mark.system

A, B = "st_alice", "st_bob"


@pytest.fixture(scope="module")
def tokens(service):
    return {A: service.add_user(A), B: service.add_user(B)}


@pytest.fixture(scope="module")
def alice(service, tokens):
    with service.client(tokens[A]) as c:
        yield c


@pytest.fixture(scope="module")
def bob(service, tokens):
    with service.client(tokens[B]) as c:
        yield c


@pytest.fixture(scope="module")
def anon(service):
    with service.client(accounts.ANON_TOKEN) as c:
        yield c


def home(service, name: str = A) -> Path:
    return storage_home.root(service.settings, name)


def upload(client, name: str, data: bytes) -> None:
    """Data Lab's put: ask for a signed URL, then PUT the bytes to it with no auth headers."""
    r = client.get("/storage/put", params={"name": name})
    assert r.status_code == 200, r.text
    r2 = httpx.put(r.text, content=data, timeout=30)
    assert r2.status_code == 200, r2.text


def download(client, name: str) -> bytes:
    r = client.get("/storage/get", params={"name": name})
    assert r.status_code == 200, r.text
    r2 = httpx.get(r.text, timeout=30)  # no headers at all
    assert r2.status_code == 200, r2.text
    return r2.content


def parts_left(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob(f"{paths.PART_PREFIX}*")]


# --- the calls, one by one ---------------------------------------------------------------------

def test_root_says_hello(service):
    with service.client() as c:
        for url in ("/storage", "/storage/"):
            r = c.get(url)
            assert r.status_code == 200 and r.text.lower().startswith("hello world")


def test_mkdir_ls_stat_isdir_access(alice, service):
    r = alice.get("/storage/mkdir", params={"dir": "vos://proj"})
    assert r.status_code == 201
    r = alice.get("/storage/mkdir", params={"dir": "vos://proj"})
    assert r.status_code == 409 and r.text == NODE_EXISTS
    upload(alice, "vos://proj/a.csv", b"ra,dec\n1,2\n")
    upload(alice, "proj/b.txt", b"hello")  # a bare name is vos://

    r = alice.get("/storage/ls", params={"name": "vos://proj", "format": "csv", "verbose": "False"})
    assert r.status_code == 200 and r.text == "a.csv,b.txt"
    assert set(alice.get("/storage/ls", params={"name": "vos://"}).text.split(",")) >= {"proj", "public", "tmp"}
    assert alice.get("/storage/ls", params={"name": "vos://proj/a.csv"}).text == "a.csv"
    long = alice.get("/storage/ls", params={"name": "vos://", "format": "long"}).text
    assert re.search(rf"^drwx------  {A}\s+0  \d\d \w\w\w \d{{4}} \d\d:\d\d  proj/$", long, re.M), long
    assert re.search(rf"^drwxr-xr-x  {A}\s+0 .* public/$", long, re.M), long
    long = alice.get("/storage/ls", params={"name": "vos://proj", "format": "long"}).text
    assert re.search(rf"^-rw-------  {A}\s+11  .*  a\.csv$", long, re.M), long
    short = alice.get("/storage/ls", params={"name": "vos://proj", "format": "short"}).text
    assert short.startswith("a.csv           b.txt")

    r = alice.get("/storage/stat", params={"name": "vos://proj/a.csv", "verbose": "True"})
    assert r.status_code == 200
    st = r.json()
    assert set(st) >= {"name", "groupread", "groupwrite", "publicread", "owner", "perms", "target", "size", "type"}
    assert st["type"] == "data" and st["size"] == 11 and st["owner"] == A and st["publicread"] is False
    assert alice.get("/storage/stat", params={"name": "vos://proj"}).json()["type"] == "container"
    r = alice.get("/storage/stat", params={"name": "vos://nothing"})
    assert r.status_code == 404 and r.text == NODE_MISSING

    assert alice.get("/storage/isdir", params={"name": "vos://proj"}).text == "True"
    assert alice.get("/storage/isdir", params={"name": "vos://proj/a.csv"}).text == "False"
    assert alice.get("/storage/isdir", params={"name": "vos://nothing"}).text == "False"
    for mode, want in (("r", "True"), ("w", "True"), ("rw", "True"), ("None", "True")):
        r = alice.get("/storage/access", params={"name": "vos://proj/a.csv", "mode": mode, "verbose": "True"})
        assert r.status_code == 200 and r.text == want, mode
    assert alice.get("/storage/access", params={"name": "vos://nothing", "mode": "r"}).text == "False"
    assert alice.get("/storage/access", params={"name": "vos://newfile", "mode": "w"}).text == "True"

    r = alice.get("/storage/ls", params={"name": "vos://nothing"})
    assert r.status_code == 404 and r.text == NODE_MISSING


def test_get_and_put_urls_are_signed_and_need_no_headers(alice, service):
    data = os.urandom(300_000)
    upload(alice, "vos://blob.bin", data)
    assert (home(service) / "blob.bin").read_bytes() == data
    assert download(alice, "vos://blob.bin") == data
    url = alice.get("/storage/get", params={"name": "vos://blob.bin"}).text
    assert url.startswith(service.settings.service_url + "/storage/file/")

    # tampered: one character of the signature, or of the payload
    token = url.split("/storage/file/")[1].split("/")[0]
    payload, sig = token.split(".")
    flip = lambda s, i: s[:i] + ("A" if s[i] != "A" else "B") + s[i + 1:]  # noqa: E731
    for bad in (f"{payload}.{flip(sig, 5)}", f"{flip(payload, 5)}.{sig}", payload, "x.y"):
        r = httpx.get(f"{service.url}/storage/file/{bad}/blob.bin")
        assert r.status_code == 403 and "not valid" in r.text, r.text
    # a forged payload naming another path, with the old signature
    forged = signing._b64(json.dumps({"u": A, "o": B, "p": "x", "m": "get", "e": 2**40}).encode())
    assert httpx.get(f"{service.url}/storage/file/{forged}.{sig}/x").status_code == 403

    # expired, and a download URL used to upload
    n = paths.node(service.settings, User(A), "vos://blob.bin")
    old = signing.sign(service.settings, User(A), n, "get", expires=time.time() - 5)
    r = httpx.get(old)
    assert r.status_code == 403 and "expired" in r.text
    r = httpx.put(url, content=b"overwrite?")
    assert r.status_code == 403 and "for GET" in r.text
    old_put = signing.sign(service.settings, User(A), n, "put", expires=time.time() - 5)
    assert httpx.put(old_put, content=b"x").status_code == 403
    assert (home(service) / "blob.bin").read_bytes() == data

    # big files stream both ways; names with spaces, '+' and non-ASCII letters work
    big = os.urandom(8 * 1024 * 1024)
    upload(alice, "vos://big dir/ü ß+x.bin", big)
    assert download(alice, "vos://big dir/ü ß+x.bin") == big
    assert alice.get("/storage/ls", params={"name": "vos://big dir"}).text == "ü ß+x.bin"
    assert alice.get("/storage/rmdir", params={"dir": "vos://big dir"}).status_code == 204

    # the full headers of the client's step 2 are fine too
    r = httpx.get(url, headers={"X-DL-AuthToken": "garbage", "Content-Type": "text/ascii"})
    assert r.status_code == 200 and r.content == data
    # a put URL for a directory is refused; get of a directory too
    r = alice.get("/storage/put", params={"name": "vos://public"})
    assert r.status_code == 400 and "directory" in r.text
    r = alice.get("/storage/get", params={"name": "vos://public"})
    assert r.status_code == 400 and "directory" in r.text
    r = alice.get("/storage/get", params={"name": "vos://nothing.csv"})
    assert r.status_code == 404 and r.text == NODE_MISSING


def test_interrupted_upload_leaves_nothing(alice, service):
    url = alice.get("/storage/put", params={"name": "vos://broken.bin"}).text

    def body():
        yield b"x" * 1_000_000
        yield b"y" * 1_000_000
        raise RuntimeError("the network went away")

    def new_parts(before: set[str]) -> set[str]:
        """Temporary files this upload left (other tests' writes in progress are not its own)."""
        deadline = time.time() + 10
        while set(parts_left(home(service))) - before and time.time() < deadline:
            time.sleep(0.1)
        return set(parts_left(home(service))) - before

    before = set(parts_left(home(service)))
    with pytest.raises(RuntimeError):
        httpx.put(url, content=body(), timeout=30)
    assert new_parts(before) == set()
    assert not (home(service) / "broken.bin").exists()
    # a file that existed before an interrupted overwrite is untouched
    upload(alice, "vos://keep.txt", b"old")
    url = alice.get("/storage/put", params={"name": "vos://keep.txt"}).text
    before = set(parts_left(home(service)))
    with pytest.raises(RuntimeError):
        httpx.put(url, content=body(), timeout=30)
    assert new_parts(before) == set()
    assert (home(service) / "keep.txt").read_bytes() == b"old"


def test_cp_mv_ln_rm_rmdir(alice, service):
    alice.get("/storage/mkdir", params={"dir": "vos://work"})
    upload(alice, "vos://work/x.csv", b"1,2\n")
    r = alice.get("/storage/cp", params={"from": "vos://work/x.csv", "to": "vos://work/y.csv"})
    assert r.status_code == 200 and "COMPLETED" in r.text
    assert (home(service) / "work/y.csv").read_bytes() == b"1,2\n"
    alice.get("/storage/mkdir", params={"dir": "vos://work/sub"})
    r = alice.get("/storage/mv", params={"from": "vos://work/y.csv", "to": "vos://work/sub"})
    assert r.status_code == 200 and "COMPLETED" in r.text
    assert (home(service) / "work/sub/y.csv").exists() and not (home(service) / "work/y.csv").exists()
    r = alice.get("/storage/mv", params={"from": "vos://work/sub/y.csv", "to": "vos://work/z.csv"})
    assert "COMPLETED" in r.text and (home(service) / "work/z.csv").exists()
    r = alice.get("/storage/cp", params={"from": "vos://work", "to": "vos://work2"})
    assert "COMPLETED" in r.text and sorted(os.listdir(home(service) / "work2")) == ["sub", "x.csv", "z.csv"]
    r = alice.get("/storage/cp", params={"from": "vos://nothing", "to": "vos://x"})
    assert r.status_code == 404 and r.text == NODE_MISSING
    r = alice.get("/storage/mv", params={"from": "vos://nothing", "to": "vos://x"})
    assert r.status_code == 404 and r.text == NODE_MISSING

    r = alice.get("/storage/ln", params={"from": "vos://xlink", "to": "vos://work/x.csv"})
    assert r.status_code == 201
    assert download(alice, "vos://xlink") == b"1,2\n"
    st = alice.get("/storage/stat", params={"name": "vos://xlink"}).json()
    assert st["type"] == "link" and st["target"] == "vos://work/x.csv"
    long = alice.get("/storage/ls", params={"name": "vos://", "format": "long"}).text
    assert re.search(r"^lrwx------  st_alice\s+4  .*  xlink -> vos://work/x\.csv$", long, re.M), long
    r = alice.get("/storage/ln", params={"from": "vos://xlink", "to": "vos://work/x.csv"})
    assert r.status_code == 409 and r.text == NODE_EXISTS
    r = alice.get("/storage/ln", params={"from": "vos://l2", "to": "vos://nothing"})
    assert r.status_code == 404
    r = alice.get("/storage/mv", params={"from": "vos://xlink", "to": "vos://work/sub"})
    assert "COMPLETED" in r.text and download(alice, "vos://work/sub/xlink") == b"1,2\n"

    r = alice.get("/storage/rm", params={"file": "vos://work/sub/xlink"})
    assert r.status_code == 204 and r.text == ""
    assert (home(service) / "work/x.csv").exists()  # the link went, not its target
    r = alice.get("/storage/rm", params={"file": "vos://work/x.csv"})
    assert r.status_code == 204
    r = alice.get("/storage/rm", params={"file": "vos://work/x.csv"})
    assert r.status_code == 404 and r.text == NODE_MISSING
    r = alice.get("/storage/rm", params={"file": "vos://work"})
    assert r.status_code == 400 and "rmdir" in r.text
    r = alice.get("/storage/rmdir", params={"dir": "vos://work/z.csv"})
    assert r.status_code == 400 and "not a directory" in r.text
    r = alice.get("/storage/rmdir", params={"dir": "vos://work"})
    assert r.status_code == 204 and not (home(service) / "work").exists()
    r = alice.get("/storage/rmdir", params={"dir": "vos://work"})
    assert r.status_code == 404 and r.text == NODE_MISSING
    for protected in ("vos://", "vos://tmp", "vos://public", "vos:///public/"):
        for call, key in (("rmdir", "dir"), ("rm", "file")):
            r = alice.get(f"/storage/{call}", params={key: protected})
            assert r.status_code == 403 and r.text == "Error: operation not permitted", (call, protected)
    r = alice.get("/storage/mv", params={"from": "vos://public", "to": "vos://pub2"})
    assert r.status_code == 403
    assert (home(service) / "public").is_dir() and (home(service) / "tmp").is_dir()


def test_tag(alice):
    upload(alice, "vos://tagged.csv", b"a\n")
    r = alice.get("/storage/tag", params={"name": "vos://tagged.csv", "tag": "my best data"})
    assert r.status_code == 200 and r.text == "OK"
    assert alice.get("/storage/stat", params={"name": "vos://tagged.csv"}).json()["tags"] == ["my best data"]
    r = alice.get("/storage/tag", params={"name": "tagged.csv", "tag": ""})
    assert r.status_code == 200 and "tags" not in alice.get("/storage/stat", params={"name": "tagged.csv"}).json()
    r = alice.get("/storage/tag", params={"name": "vos://nothing", "tag": "x"})
    assert r.status_code == 404 and r.text == NODE_MISSING
    assert ".starbox-meta.json" not in alice.get("/storage/ls").text


def test_load(alice, service, fetching_service, tokens):
    upload(alice, "vos://public/src.csv", b"id\n1\n2\n")
    url = alice.get("/storage/get", params={"name": "vos://public/src.csv"}).text
    # the default service refuses its own loopback (starbox.outbound; tests/test_outbound.py)
    r = alice.get("/storage/load", params={"name": "vos://loaded.csv", "endpoint": url, "is_vospace": "False"})
    assert r.status_code == 400 and "loopback" in r.text and not (home(service) / "loaded.csv").exists()
    with fetching_service.client(tokens[A]) as fa:  # fetch_allow_hosts=127.0.0.1
        r = fa.get("/storage/load", params={"name": "vos://loaded.csv", "endpoint": url, "is_vospace": "False"})
        assert r.status_code == 200 and r.text == "OK"
        assert (home(service) / "loaded.csv").read_bytes() == b"id\n1\n2\n"
        r = fa.get("/storage/load", params={"name": "vos://copied.csv", "endpoint": "vos://public/src.csv",
                                            "is_vospace": "True"})
        assert r.status_code == 200 and (home(service) / "copied.csv").exists()
        dead = f"http://127.0.0.1:{free_port()}/x.csv"
        r = fa.get("/storage/load", params={"name": "vos://dead.csv", "endpoint": dead})
        assert r.status_code == 502 and r.text == f"Error: could not fetch {dead}"
        r = fa.get("/storage/load", params={"name": "vos://nf.csv", "endpoint": f"{service.url}/storage/nope"})
        assert r.status_code == 502 and "404" in r.text
        for bad in ("file:///etc/passwd", "not a url", "http://"):
            r = fa.get("/storage/load", params={"name": "vos://bad.csv", "endpoint": bad})
            assert r.status_code == 400, (bad, r.status_code, r.text)
    assert not any((home(service) / n).exists() for n in ("dead.csv", "nf.csv", "bad.csv"))
    assert parts_left(home(service)) == []


def test_xfer_stages_chunks(alice, anon, service):
    staged = storage_home.staging_dir(service.settings, A) / "t.csv"
    h = {"Content-type": "application/octet-stream", "X-DL-FileName": "t.csv"}
    r = alice.post("/storage/xfer", content=b"a,b\n", headers=h | {"X-DL-InitXfer": "True"})
    assert r.status_code == 200 and r.text == "OK"
    r = alice.post("/storage/xfer", content=b"1,2\n", headers=h | {"X-DL-InitXfer": "False"})
    assert r.status_code == 200 and staged.read_bytes() == b"a,b\n1,2\n"
    r = alice.post("/storage/xfer", content=b"x,y\n", headers=h | {"X-DL-InitXfer": "True"})
    assert staged.read_bytes() == b"x,y\n"
    r = alice.post("/storage/xfer", content=b"q", headers=h | {"X-DL-FileName": "/some/dir/u.csv",
                                                              "X-DL-InitXfer": "True"})
    assert r.status_code == 200 and (staged.parent / "u.csv").read_bytes() == b"q"
    for bad in ("../../etc/x", "..", "", "a/../b"):
        r = alice.post("/storage/xfer", content=b"x", headers=h | {"X-DL-FileName": bad, "X-DL-InitXfer": "True"})
        assert r.status_code == 400, (bad, r.text)
    r = anon.post("/storage/xfer", content=b"x", headers=h | {"X-DL-InitXfer": "True"})
    assert r.status_code == 403
    assert "t.csv" not in alice.get("/storage/ls").text  # staged files are not in the user's tree


def test_profiles_and_services(service):
    with service.client() as c:
        r = c.get("/storage/profiles", params={"format": "text"})
        assert r.status_code == 200 and r.text == "            default   Starbox local storage\n"
        r = c.get("/storage/profiles", params={"profile": "default", "format": "text"})
        assert r.status_code == 200 and r.json()["name"] == "default"
        assert c.get("/storage/profiles", params={"profile": "nope"}).status_code == 404
        assert c.get("/storage/services").status_code == 200


# --- sharing, anonymous users and escapes --------------------------------------------------------

def test_sharing_through_public(alice, bob, service):
    upload(alice, "vos://public/shared.csv", b"for everyone\n")
    upload(alice, "vos://private.csv", b"secret\n")
    assert download(bob, f"{A}://public/shared.csv") == b"for everyone\n"
    r = bob.get("/storage/ls", params={"name": f"{A}://public"})
    assert r.status_code == 200 and "shared.csv" in r.text.split(",")
    st = bob.get("/storage/stat", params={"name": f"{A}://public/shared.csv"}).json()
    assert st["publicread"] is True and st["owner"] == A
    assert bob.get("/storage/access", params={"name": f"{A}://public/shared.csv", "mode": "r"}).text == "True"
    assert bob.get("/storage/access", params={"name": f"{A}://public/shared.csv", "mode": "w"}).text == "False"
    assert bob.get("/storage/access", params={"name": f"{A}://private.csv", "mode": "r"}).text == "False"

    for call, params in (
        ("put", {"name": f"{A}://public/evil.csv"}),
        ("mkdir", {"dir": f"{A}://public/evil"}),
        ("rm", {"file": f"{A}://public/shared.csv"}),
        ("tag", {"name": f"{A}://public/shared.csv", "tag": "x"}),
        ("mv", {"from": f"{A}://public/shared.csv", "to": "vos://stolen.csv"}),
        ("cp", {"from": "vos://public", "to": f"{A}://public/evil"}),
        ("get", {"name": f"{A}://private.csv"}),
        ("ls", {"name": f"{A}://"}),
        ("ls", {"name": f"{A}://tmp"}),
        ("stat", {"name": f"{A}://private.csv"}),
        ("isdir", {"name": f"{A}://tmp"}),
    ):
        r = bob.get(f"/storage/{call}", params=params)
        assert r.status_code == 403 and r.text.startswith("Error: "), (call, params, r.status_code, r.text)
    assert not (home(service) / "public/evil.csv").exists()
    assert (home(service) / "public/shared.csv").exists()
    # bob may copy a public file into his own tree
    r = bob.get("/storage/cp", params={"from": f"{A}://public/shared.csv", "to": "vos://mine.csv"})
    assert "COMPLETED" in r.text and (home(service, B) / "mine.csv").read_bytes() == b"for everyone\n"
    # a link in alice's public/ to her private file does not open it to bob
    assert alice.get("/storage/ln", params={"from": "vos://public/peek", "to": "vos://private.csv"}).status_code == 201
    assert download(alice, "vos://public/peek") == b"secret\n"
    r = bob.get("/storage/get", params={"name": f"{A}://public/peek"})
    assert r.status_code == 403 and "private" in r.text
    long = bob.get("/storage/ls", params={"name": f"{A}://public", "format": "long"}).text
    assert re.search(r"^lrwxr-xr-x  st_alice .*  peek -> \(private\)$", long, re.M), long
    assert "secret" not in long and "private.csv" not in long
    r = bob.get("/storage/cp", params={"from": f"{A}://public", "to": "vos://pubcopy"})
    assert r.status_code in (400, 403) and not (home(service, B) / "pubcopy/peek").exists()
    alice.get("/storage/rm", params={"file": "vos://public/peek"})
    # a signed URL stops working when the file is no longer shared
    url = bob.get("/storage/get", params={"name": f"{A}://public/shared.csv"}).text
    alice.get("/storage/mv", params={"from": "vos://public/shared.csv", "to": "vos://unshared.csv"})
    assert httpx.get(url).status_code == 404
    alice.get("/storage/mv", params={"from": "vos://unshared.csv", "to": "vos://public/shared.csv"})


def test_anonymous_reads_public_only(alice, anon, service):
    upload(alice, "vos://public/open.txt", b"hello all")
    assert download(anon, f"{A}://public/open.txt") == b"hello all"
    with service.client() as nobody:  # no token at all is anonymous too
        assert download(nobody, f"{A}://public/open.txt") == b"hello all"
    for call, params in (
        ("ls", {"name": "vos://"}),
        ("get", {"name": f"{A}://private.csv"}),
        ("put", {"name": f"{A}://public/x.txt"}),
        ("put", {"name": "vos://x.txt"}),
        ("mkdir", {"dir": "vos://d"}),
        ("rm", {"file": f"{A}://public/open.txt"}),
        ("load", {"name": "vos://x", "endpoint": "http://127.0.0.1/"}),
    ):
        r = anon.get(f"/storage/{call}", params=params)
        assert r.status_code == 403 and r.text.startswith("Error: "), (call, r.status_code, r.text)
    assert (home(service) / "public/open.txt").exists()


def test_escapes_are_refused(alice, bob, service):
    upload(bob, "vos://public/bobs.txt", b"bob")
    upload(bob, "vos://bob_private.txt", b"bob secret")
    for name in ("../st_bob/bob_private.txt", "vos://../st_bob", "vos://a/../../etc", "/etc/passwd",
                 "vos:////etc/passwd", "vos://public/..", "..", "vos://x\x00y"):
        for call, key in (("get", "name"), ("ls", "name"), ("put", "name"), ("stat", "name"), ("mkdir", "dir")):
            r = alice.get(f"/storage/{call}", params={key: name})
            assert r.status_code == 400 and r.text.startswith("Error: "), (call, name, r.status_code, r.text)
    # links planted in alice's tree (as if by a bug or by hand) that leave it
    os.symlink("/etc", home(service) / "etc_link")
    os.symlink(home(service, B), home(service) / "bob_link")
    os.symlink("/etc/passwd", home(service) / "public/passwd")
    try:
        for name in ("vos://etc_link/passwd", "vos://etc_link", "vos://bob_link/bob_private.txt",
                     "vos://bob_link"):
            for call in ("get", "ls", "stat", "put"):
                r = alice.get(f"/storage/{call}", params={"name": name})
                assert r.status_code == 400 and "link" in r.text, (call, name, r.status_code, r.text)
        r = bob.get("/storage/get", params={"name": f"{A}://public/passwd"})
        assert r.status_code == 400
        r = alice.get("/storage/cp", params={"from": "vos://etc_link/passwd", "to": "vos://p"})
        assert r.status_code == 400 and not (home(service) / "p").exists()
        r = alice.get("/storage/cp", params={"from": "vos://public", "to": "vos://pubcopy"})
        assert r.status_code == 400 and not (home(service) / "pubcopy").exists()
        # but a bad link itself may be removed
        assert alice.get("/storage/rm", params={"file": "vos://etc_link"}).status_code == 204
        assert alice.get("/storage/rm", params={"file": "vos://public/passwd"}).status_code == 204
    finally:
        for name in ("etc_link", "bob_link", "public/passwd"):
            if os.path.lexists(home(service) / name):
                os.unlink(home(service) / name)
    assert os.path.exists("/etc/passwd") and (home(service, B) / "bob_private.txt").exists()
    # links made through the API may not leave the owner's tree
    r = alice.get("/storage/ln", params={"from": "vos://bl", "to": f"{B}://public/bobs.txt"})
    assert r.status_code == 403 and not os.path.lexists(home(service) / "bl")


# --- limits ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small(service, tokens):
    """A second service on the same home with a 2 MB quota and a 1 MB upload cap."""
    import dataclasses

    s = dataclasses.replace(service.settings, service_port=free_port(), storage_quota_mb=2, max_upload_mb=1)
    env = settings_env(s) | {"STARBOX_SERVICE_PORT": str(s.service_port), "STARBOX_STORAGE_QUOTA_MB": "2",
                             "STARBOX_MAX_UPLOAD_MB": "1", "STARBOX_FETCH_ALLOW_HOSTS": "127.0.0.1"}
    log = (s.log_dir / "service-test-small.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "starbox.service"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{s.service_url}/storage", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        user = "st_carol"
        token = service.add_user(user)
        with httpx.Client(base_url=s.service_url, headers={"X-DL-AuthToken": token}, timeout=30) as client:
            yield s, client, user
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_upload_cap_and_quota(small, service):
    s, carol, user = small
    tree = storage_home.root(s, user)
    MB = 1024 * 1024
    # one upload larger than max_upload_mb, with a Content-Length and streamed without one
    url = carol.get("/storage/put", params={"name": "vos://big.bin"}).text
    r = httpx.put(url, content=b"x" * (MB + 10))
    assert r.status_code == 413 and "1 MB allowed for one upload" in r.text, r.text

    def stream():
        for _ in range(12):
            yield b"x" * (MB // 10)

    r = httpx.put(url, content=stream())
    assert r.status_code == 413 and "1 MB allowed" in r.text
    assert not (tree / "big.bin").exists() and parts_left(tree) == []
    # fill the quota, then refuse with used / allowed in the message
    for i in range(2):
        url = carol.get("/storage/put", params={"name": f"vos://f{i}.bin"}).text
        assert httpx.put(url, content=b"y" * (9 * MB // 10)).status_code == 200
    url = carol.get("/storage/put", params={"name": "vos://f2.bin"}).text
    r = httpx.put(url, content=b"z" * (MB // 2))
    assert r.status_code == 413 and re.search(r"quota exceeded: 1\.8 MB used of 2\.0 MB allowed", r.text), r.text
    assert not (tree / "f2.bin").exists()
    # overwriting a file gives its old size back
    url = carol.get("/storage/put", params={"name": "vos://f1.bin"}).text
    assert httpx.put(url, content=b"w" * (MB // 2)).status_code == 200
    # cp needs room too
    r = carol.get("/storage/cp", params={"from": "vos://f0.bin", "to": "vos://f0copy.bin"})
    assert r.status_code == 413 and "quota" in r.text
    # load: too big for what is left
    big_url = carol.get("/storage/get", params={"name": "vos://f0.bin"}).text
    r = carol.get("/storage/load", params={"name": "vos://l.bin", "endpoint": big_url})
    assert r.status_code == 413 and not (tree / "l.bin").exists()
    # a huge Content-Length is refused before any byte is read
    path = urllib.parse.urlsplit(url)
    with socket.create_connection((path.hostname, path.port), timeout=10) as sock:
        sock.sendall(f"PUT {path.path} HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n".encode())
        head = sock.recv(4096).decode(errors="replace")
    assert head.startswith("HTTP/1.1 413"), head
    # xfer: the staging cap
    h = {"X-DL-FileName": "huge.csv", "X-DL-InitXfer": "True"}
    r = carol.post("/storage/xfer", content=b"q" * (MB + 1), headers=h)
    assert r.status_code == 413


def test_query_results_saved_to_storage_count_against_the_quota(small):
    """out=vos://: a result streams straight into storage; the quota applies, the cap on one
    upload does not (a result is not an upload), and a refused save leaves no file."""
    s, carol, user = small
    tree = storage_home.root(s, user)
    for name in ("f0.bin", "f1.bin", "r1.csv", "r2.csv"):
        carol.get("/storage/rm", params={"name": f"vos://{name}"})
    sql = "SELECT id, ra, dec FROM smash_sim.object ORDER BY id LIMIT 30000"  # about 1.4 MB of CSV
    r = carol.get("/query/query", params={"sql": sql, "out": "vos://r1.csv"})
    assert r.status_code == 200 and r.text == "OK", r.text
    assert 1024 * 1024 < (tree / "r1.csv").stat().st_size < 2 * 1024 * 1024
    r = carol.get("/query/query", params={"sql": sql, "out": "vos://r2.csv"})
    assert r.status_code == 413 and "storage quota exceeded" in r.text, r.text
    jobid = carol.get("/query/query", params={"sql": sql, "out": "vos://r2.csv", "async": "True"}).text
    for _ in range(300):
        phase = carol.get("/query/status", params={"jobid": jobid}).text
        if phase not in ("QUEUED", "EXECUTING"):
            break
        time.sleep(0.1)
    assert phase == "ERROR"
    assert "storage quota exceeded" in carol.get("/query/error", params={"jobid": jobid}).text
    assert not (tree / "r2.csv").exists() and parts_left(tree) == []


# --- bad input ---------------------------------------------------------------------------------

def test_bad_input_never_gives_500(alice, service):
    calls = ["ls", "stat", "access", "isdir", "get", "put", "mkdir", "rm", "rmdir", "cp", "mv", "ln", "tag",
             "load", "profiles"]
    weird = ["", "vos://", "://", "vos:", "nobody_here://public/x", "NoSuchScheme!://x", "vos://" + "a" * 5000,
             "vos://%00", "vos://a\\..\\b", "mydb://table", "vos://.starbox-meta.json", "vos://tmp/../../..",
             "\u2603://x", "vos://ü/ß.csv"]
    for call in calls:
        for value in weird:
            params = {"name": value, "dir": value, "file": value, "from": value, "to": value, "tag": value,
                      "endpoint": value, "mode": value, "format": value, "profile": value}
            r = alice.get(f"/storage/{call}", params=params)
            assert r.status_code < 500 and "Traceback" not in r.text, (call, value, r.status_code, r.text)
        r = alice.get(f"/storage/{call}")  # no parameters at all
        assert r.status_code < 500, (call, r.text)
        with service.client("st_alice.1.1.$1$" + "x" * 30) as forged:
            r = forged.get(f"/storage/{call}", params={"name": "vos://"})
            assert r.status_code == 401 or call == "profiles", (call, r.status_code)
        with service.client("not a token") as garbage:
            r = garbage.get(f"/storage/{call}", params={"name": "vos://"})
            assert r.status_code == 401 or call == "profiles", (call, r.status_code)
    r = alice.get("/storage/ls", params={"name": "vos://", "format": "fancy"})
    assert r.status_code == 400
    r = alice.get("/storage/access", params={"name": "vos://", "mode": "x"})
    assert r.status_code == 400
    r = alice.post("/storage/xfer", content=b"x")
    assert r.status_code == 400
    for bad in ("", "x", "a.b", "....", "%%%"):
        assert httpx.get(f"{service.url}/storage/file/{bad}/f").status_code in (403, 404)
        assert httpx.put(f"{service.url}/storage/file/{bad}/f", content=b"x").status_code in (403, 404)


# --- the functions other code calls ------------------------------------------------------------

def test_resolve_and_write_atomic(service, tokens, tmp_path):
    s, alice_u, bob_u = service.settings, User(A), User(B)
    root = home(service)
    assert paths.resolve(s, alice_u, "vos://a/b.csv") == root / "a/b.csv"
    assert paths.resolve(s, alice_u, "vos:a/b.csv") == root / "a/b.csv"
    assert paths.resolve(s, alice_u, "a/b.csv") == root / "a/b.csv"
    assert paths.resolve(s, alice_u, "vos:///a/b.csv") == root / "a/b.csv"
    assert paths.resolve(s, bob_u, f"{A}://public/x.csv") == root / "public/x.csv"
    assert paths.resolve(s, alice_u, f"{A}://tmp/x", write=True) == root / "tmp/x"
    with pytest.raises(Forbidden):
        paths.resolve(s, bob_u, f"{A}://private.csv")
    with pytest.raises(Forbidden):
        paths.resolve(s, bob_u, f"{A}://public/x.csv", write=True)
    with pytest.raises(Forbidden):
        paths.resolve(s, accounts.ANONYMOUS, f"{A}://public/x.csv", write=True)
    with pytest.raises(Forbidden):
        paths.resolve(s, accounts.ANONYMOUS, "vos://x")
    assert paths.resolve(s, accounts.ANONYMOUS, f"{A}://public/x.csv") == root / "public/x.csv"
    for bad in ("../x", "vos://a/../../x", "/etc/passwd", "a\x00b"):
        with pytest.raises(StarboxError) as info:
            paths.resolve(s, alice_u, bad)
        assert info.value.status == 400

    target = tmp_path / "out.bin"
    assert paths.write_atomic(target, [b"ab", b"cd"]) == 4 and target.read_bytes() == b"abcd"

    def failing():
        yield b"new"
        raise OSError("disk gone")

    with pytest.raises(OSError):
        paths.write_atomic(target, failing())
    assert target.read_bytes() == b"abcd" and os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(TooLarge):
        paths.write_atomic(tmp_path / "capped", [b"x" * 10], limit=5)
    assert os.listdir(tmp_path) == ["out.bin"]
