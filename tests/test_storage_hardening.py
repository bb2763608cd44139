"""Issue 11, storage: the attacks of items 7, 11, 12 and 16 against the live service, each with the
refusal it now gets. Quotas under real parallel uploads (threads, httpx, a service of its own with a
small quota), staged uploads counted and expiring, anonymous callers writing nothing, signed URLs
dying with their account or session, account removal leaving nothing behind, and links that no
mv can turn towards another user's file or secrets/."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import free_port, run_cli, start_service
from starbox import accounts, database, storage_home
from starbox.storage import paths, quota

pytestmark = pytest.mark.system

MB = 1024 * 1024
QUOTA_MB, CAP_MB = 20, 16


def disk_bytes(s, user: str) -> int:
    """Everything on disk for a user, temporary files of writes in progress included."""
    total = 0
    for top in (storage_home.root(s, user), storage_home.staging_dir(s, user, purge=False)):
        for folder, _, files in os.walk(top):
            for name in files:
                try:
                    total += os.lstat(os.path.join(folder, name)).st_size
                except OSError:
                    pass
    return total


def parts_left(s, user: str) -> list[str]:
    tops = (storage_home.root(s, user), storage_home.staging_dir(s, user, purge=False))
    return [p.name for top in tops if top.exists() for p in top.rglob(f"{paths.PART_PREFIX}*")]


class Monitor:
    """Samples a user's bytes on disk every few ms while uploads run; `peak` is the most seen."""

    def __init__(self, s, user: str):
        self.s, self.user, self.peak, self._stop = s, user, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, disk_bytes(self.s, self.user))
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, disk_bytes(self.s, self.user))


def slow_body(size: int, pieces: int = 8, pause: float = 0.05):
    piece = size // pieces
    for _ in range(pieces):
        time.sleep(pause)
        yield b"x" * piece


def in_parallel(jobs):
    """Run the callables at once (a barrier), return their results in order."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        barrier.wait()
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - reported in the assertion
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


@pytest.fixture(scope="module")
def small(service):
    """A second service on the same home: a 20 MB quota, a 16 MB cap on one upload."""
    s = dataclasses.replace(service.settings, service_port=free_port(), storage_quota_mb=QUOTA_MB,
                            max_upload_mb=CAP_MB)
    proc = start_service(s, STARBOX_SERVICE_PORT=str(s.service_port), STARBOX_STORAGE_QUOTA_MB=str(QUOTA_MB),
                         STARBOX_MAX_UPLOAD_MB=str(CAP_MB))
    try:
        yield s
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def client(s, token):
    return httpx.Client(base_url=s.service_url, headers={"X-DL-AuthToken": token}, timeout=60)


def put_url(c, name: str) -> str:
    r = c.get("/storage/put", params={"name": name})
    assert r.status_code == 200, r.text
    return r.text


def clear(s, user: str) -> None:
    for top in (storage_home.root(s, user), storage_home.staging_dir(s, user, purge=False)):
        for p in list(top.iterdir()) if top.exists() else []:
            if p.is_file():
                p.unlink()


# --- item 7: quotas ------------------------------------------------------------------------------

def test_parallel_uploads_never_pass_the_quota(small, service):
    """The issue's attack, scaled down: parallel uploads that each fit alone. With declared sizes
    exactly as many as fit are stored; the others get 413 at once, naming used, held and free."""
    user = "hq_par"
    token = service.add_user(user)
    clear(small, user)
    with client(small, token) as c:
        urls = [put_url(c, f"vos://p{i}.bin") for i in range(6)]

    def upload(url):
        return lambda: httpx.put(url, content=slow_body(6 * MB), headers={"Content-Length": str(6 * MB)},
                                 timeout=60)

    with Monitor(small, user) as seen:
        results = in_parallel([upload(u) for u in urls])
    codes = [getattr(r, "status_code", r) for r in results]
    assert sorted(codes, key=str) == [200, 200, 200, 413, 413, 413], codes
    for r in results:
        if r.status_code == 413:
            assert "storage quota exceeded" in r.text and "MB held by uploads in progress" in r.text, r.text
    assert seen.peak <= QUOTA_MB * MB, seen.peak
    stored = sorted(p.name for p in storage_home.root(small, user).glob("p*.bin"))
    assert len(stored) == 3 and quota.usage(small, user) == 18 * MB
    assert parts_left(small, user) == [] and quota.reserved(small, user) == 0


def test_parallel_streamed_uploads_never_pass_the_quota(small, service):
    """Without a Content-Length an upload holds all it may grow to (the cap, or what is free):
    parallel streams are refused with 413 rather than ever storing more than the quota."""
    user = "hq_stream"
    token = service.add_user(user)
    clear(small, user)
    with client(small, token) as c:
        urls = [put_url(c, f"vos://s{i}.bin") for i in range(4)]
    jobs = [lambda u=u: httpx.put(u, content=slow_body(8 * MB), timeout=60) for u in urls]
    with Monitor(small, user) as seen:
        results = in_parallel(jobs)
    codes = [getattr(r, "status_code", repr(r)) for r in results]
    assert 200 in codes and set(codes) <= {200, 413}, codes
    for r in results:
        if r.status_code == 413:
            assert "storage quota exceeded" in r.text or "allowed for one upload" in r.text, r.text
    assert seen.peak <= QUOTA_MB * MB, seen.peak
    assert quota.usage(small, user) == 8 * MB * codes.count(200) <= QUOTA_MB * MB
    assert parts_left(small, user) == [] and quota.reserved(small, user) == 0


def test_staged_uploads_count_and_expire(small, service):
    """POST /storage/xfer: staged files count against the quota (in parallel too) and are deleted
    staging_ttl_hours after their last chunk, after which they can no longer be imported."""
    user = "hq_stage"
    token = service.add_user(user)
    clear(small, user)
    staging = storage_home.staging_dir(small, user, purge=False)
    with client(small, token) as c:
        def stage(name):
            h = {"X-DL-FileName": name, "X-DL-InitXfer": "True", "Content-Length": str(8 * MB)}
            return lambda: c.post("/storage/xfer", content=slow_body(8 * MB), headers=h)

        with Monitor(small, user) as seen:
            results = in_parallel([stage(f"t{i}.csv") for i in range(3)])
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 200, 413], [(r.status_code, r.text) for r in results]
        assert "storage quota exceeded" in next(r.text for r in results if r.status_code == 413)
        assert seen.peak <= QUOTA_MB * MB
        # 16 MB staged: an upload of 6 MB no longer fits in the tree
        r = httpx.put(put_url(c, "vos://after.bin"), content=b"y" * (6 * MB))
        assert r.status_code == 413 and "staged uploads count too" in r.text, r.text
        # appending to a staged file counts as well
        staged = sorted(p.name for p in staging.iterdir())
        h = {"X-DL-FileName": staged[0], "X-DL-InitXfer": "False"}
        r = c.post("/storage/xfer", content=b"z" * (5 * MB), headers=h)
        assert r.status_code == 413 and "storage quota exceeded" in r.text
        assert (staging / staged[0]).stat().st_size == 8 * MB  # a refused chunk adds nothing

        # past their lifetime staged files go (on the next look at staging), and their room with them
        old = time.time() - (small.staging_ttl_hours + 1) * 3600
        for name in staged:
            os.utime(staging / name, (old, old))
        r = c.get("/query/import", params={"table": "from_staged", "filename": staged[0]})
        assert r.status_code == 404 and "no staged file" in r.text, r.text
        assert list(staging.iterdir()) == []
        r = httpx.put(put_url(c, "vos://after.bin"), content=b"y" * (6 * MB))
        assert r.status_code == 200, r.text
    assert parts_left(small, user) == []


def test_query_results_and_copies_reserve_too(small, service):
    """out=vos:// and cp go through the same reservation: a refused result leaves no file."""
    user = "hq_res"
    token = service.add_user(user)
    clear(small, user)
    tree = storage_home.root(small, user)
    with client(small, token) as c:
        assert httpx.put(put_url(c, "vos://fill.bin"), content=b"f" * (16 * MB)).status_code == 200
        sql = "SELECT hip, ra, dec, plx, hpmag FROM hipparcos.main ORDER BY hip"  # several MB of CSV
        r = c.get("/query/query", params={"sql": sql, "out": "vos://big.csv"})
        assert r.status_code == 413 and "storage quota exceeded" in r.text, r.text
        r = c.get("/query/query", params={"sql": sql + " LIMIT 10", "out": "vos://small.csv"})
        assert r.status_code == 200 and (tree / "small.csv").stat().st_size > 0, r.text
        r = c.get("/storage/cp", params={"from": "vos://fill.bin", "to": "vos://fill2.bin"})
        assert r.status_code == 413 and "the copy needs 16.0 MB" in r.text, r.text
    assert not (tree / "big.csv").exists() and not (tree / "fill2.bin").exists()
    assert parts_left(small, user) == [] and quota.reserved(small, user) == 0


def test_a_dead_writers_reservation_is_dropped(small, service):
    """A reservation whose process died (kill -9 mid-upload) stops counting, and its temporary
    file goes once it is an hour old."""
    user = "hq_dead"
    service.add_user(user)
    clear(small, user)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ledger = small.storage_dir / "quota" / f"{user}.json"
    ledger.parent.mkdir(parents=True, exist_ok=True)
    ledger.write_text(json.dumps({"deadbeef0001": {"bytes": QUOTA_MB * MB, "pid": dead.pid, "started": 1.0}}))
    orphan = storage_home.root(small, user) / f"{paths.PART_PREFIX}deadbeef0001-abc"
    orphan.write_bytes(b"o" * MB)
    old = time.time() - 2 * quota.ORPHAN_AGE
    os.utime(orphan, (old, old))
    assert quota.reserved(small, user) == 0
    with quota.take(small, user, at_most=MB, at_most_message="x", expected=MB) as held:
        assert held.bytes == MB
    assert not orphan.exists()


# --- item 7: anonymous callers write nothing ------------------------------------------------------

WRITES = [
    ("put", {"name": "vos://x.txt"}), ("put", {"name": "hw_owner://public/x.txt"}),
    ("mkdir", {"dir": "vos://d"}), ("mkdir", {"dir": "hw_owner://public/d"}),
    ("rm", {"file": "hw_owner://public/open.txt"}), ("rmdir", {"dir": "hw_owner://public/sub"}),
    ("cp", {"from": "hw_owner://public/open.txt", "to": "vos://c.txt"}),
    ("cp", {"from": "hw_owner://public/open.txt", "to": "hw_owner://public/c.txt"}),
    ("mv", {"from": "hw_owner://public/open.txt", "to": "hw_owner://public/m.txt"}),
    ("ln", {"from": "hw_owner://public/l", "to": "hw_owner://public/open.txt"}),
    ("ln", {"from": "vos://l", "to": "hw_owner://public/open.txt"}),
    ("tag", {"name": "hw_owner://public/open.txt", "tag": "x"}),
    ("load", {"name": "hw_owner://public/x", "endpoint": "hw_owner://public/open.txt", "is_vospace": "True"}),
]


def test_anonymous_callers_write_nothing(service):
    token = service.add_user("hw_owner")
    with service.client(token) as owner:
        r = owner.get("/storage/put", params={"name": "vos://public/open.txt"})
        assert httpx.put(r.text, content=b"hello").status_code == 200
        owner.get("/storage/mkdir", params={"dir": "vos://public/sub"})
    before = sorted(str(p) for p in service.settings.storage_dir.rglob("*") if "quota" not in p.parts)
    xfer = {"X-DL-FileName": "a.csv", "X-DL-InitXfer": "True"}
    for who in (accounts.ANON_TOKEN, None):
        with service.client(who) as anon:
            for call, params in WRITES:
                r = anon.get(f"/storage/{call}", params=params)
                assert r.status_code == 403 and r.text.startswith("Error: "), (who, call, params, r.text)
                assert "anonymous" in r.text or "permission denied" in r.text, (call, r.text)
            r = anon.post("/storage/xfer", content=b"a,b\n", headers=xfer)
            assert r.status_code == 403 and "anonymous users cannot upload" in r.text
            # a download URL an anonymous caller may have cannot upload
            url = anon.get("/storage/get", params={"name": "hw_owner://public/open.txt"}).text
            r = httpx.put(url, content=b"overwrite")
            assert r.status_code == 403 and "for GET" in r.text
    for bad in ("hw_owner.1.1.$1$" + "x" * 30, "garbage"):
        with service.client(bad) as forged:
            for call, params in WRITES[:3]:
                assert forged.get(f"/storage/{call}", params=params).status_code == 401
            assert forged.post("/storage/xfer", content=b"x", headers=xfer).status_code == 401
    after = sorted(str(p) for p in service.settings.storage_dir.rglob("*") if "quota" not in p.parts)
    assert after == before
    assert not storage_home.root(service.settings, "anonymous").exists()
    assert not storage_home.staging_dir(service.settings, "anonymous", purge=False).exists()
    assert (storage_home.root(service.settings, "hw_owner") / "public/open.txt").read_bytes() == b"hello"


# --- item 12: signed URLs outlive nothing --------------------------------------------------------

def urls(c, name: str) -> tuple[str, str]:
    get = c.get("/storage/get", params={"name": name})
    put = c.get("/storage/put", params={"name": name})
    assert get.status_code == 200 and put.status_code == 200, (get.text, put.text)
    return get.text, put.text


def refused(get: str, put: str, why: str) -> None:
    r = httpx.get(get)
    assert r.status_code == 403 and "revoked" in r.text and why in r.text, r.text
    r = httpx.put(put, content=b"changed")
    assert r.status_code == 403 and "revoked" in r.text and why in r.text, r.text


def test_signed_urls_die_with_the_account_and_session(service):
    user = "hs_sig"
    s = service.settings
    token = service.add_user(user)
    with service.client(token) as c:
        assert httpx.put(put_url(c, "vos://f.txt"), content=b"mine").status_code == 200
        get, put = urls(c, "vos://f.txt")
        assert httpx.get(get).content == b"mine"
        assert c.get("/auth/logout").status_code == 200
    refused(get, put, "session")

    token = service.add_user(user)
    with service.client(token) as c:
        get, put = urls(c, "vos://f.txt")
    with database.connect_admin(s) as conn:
        accounts.set_disabled(conn, user, True)
    refused(get, put, "disabled")
    with database.connect_admin(s) as conn:
        accounts.set_disabled(conn, user, False)
    refused(get, put, "session")  # enabling again does not bring the old sessions back

    token = service.add_user(user)
    with service.client(token) as c:
        get, put = urls(c, "vos://f.txt")
        assert httpx.get(get).status_code == 200
    with database.connect_admin(s) as conn:
        accounts.set_password(conn, user, "another-pw")
    refused(get, put, "session")

    token = service.add_user(user, "another-pw")
    with service.client(token) as c:
        get, put = urls(c, "vos://f.txt")
    r = run_cli(s, "accounts", "remove", user, "--yes")
    assert r.returncode == 0, r.stderr
    refused(get, put, "no longer exists")
    # a new account of the same name, with a file of the same name, is someone else
    token = service.add_user(user)
    with service.client(token) as c:
        assert httpx.put(put_url(c, "vos://f.txt"), content=b"new owner").status_code == 200
    refused(get, put, "no longer exists")
    assert (storage_home.root(s, user) / "f.txt").read_bytes() == b"new owner"


# --- item 11: account removal leaves nothing -----------------------------------------------------

def test_account_removal_leaves_no_files(service):
    user = "hr_gone"
    s = service.settings
    token = service.add_user(user)
    with service.client(token) as c:
        h = {"X-DL-FileName": "old.csv", "X-DL-InitXfer": "True"}
        assert c.post("/storage/xfer", content=b"a,b\n1,2\n", headers=h).status_code == 200
        assert httpx.put(put_url(c, "vos://kept.txt"), content=b"old").status_code == 200
    staging = storage_home.staging_dir(s, user, purge=False)
    assert (staging / "old.csv").exists() and (s.storage_dir / "quota" / f"{user}.lock").exists()
    r = run_cli(s, "accounts", "remove", user, "--yes")
    assert r.returncode == 0, r.stderr
    assert not staging.exists() and not storage_home.root(s, user).exists()
    assert not list((s.storage_dir / "quota").glob(f"{user}.*"))
    # the attack: a re-created account of the same name imported the old staged file
    token = service.add_user(user)
    with service.client(token) as c:
        r = c.get("/query/import", params={"table": "stolen", "filename": "old.csv"})
        assert r.status_code == 404 and "no staged file" in r.text, r.text
        assert c.get("/storage/ls", params={"name": "vos://"}).text.split(",") == ["public", "tmp"]


# --- item 16: links stay in their owner's tree ----------------------------------------------------

@pytest.fixture(scope="module")
def linker(service):
    a, b = "hl_link", "hl_bob"
    ta, tb = service.add_user(a), service.add_user(b)
    with service.client(ta) as ca, service.client(tb) as cb:
        assert httpx.put(put_url(cb, "vos://private.txt"), content=b"bob's secret").status_code == 200
        # alice's own files named like the places a retargeted link would reach
        assert httpx.put(put_url(ca, "vos://users/hl_bob/private.txt"), content=b"mine").status_code == 200
        assert httpx.put(put_url(ca, "vos://secrets/signing.key"), content=b"mine too").status_code == 200
        yield ca, storage_home.root(service.settings, a)


def fetch(c, name: str) -> httpx.Response:
    r = c.get("/storage/get", params={"name": name})
    return httpx.get(r.text) if r.status_code == 200 else r


def test_mv_of_a_folder_cannot_retarget_a_link(service, linker):
    """The issue's attack through the API: a link made deep in a folder, then the folder moved to
    a shallower depth. Relative targets would then name hl_bob's file or $STARBOX_HOME/secrets;
    mv recomputes the targets of the links it moves, so they still name alice's own files."""
    c, root = linker
    for folder, link, target, moved, content in (
            ("vos://p/q/r", "l", "vos://users/hl_bob/private.txt", "vos://r", b"mine"),
            ("vos://p2/q/r/s", "l", "vos://secrets/signing.key", "vos://s", b"mine too")):
        assert c.get("/storage/mkdir", params={"dir": folder}).status_code == 201
        assert c.get("/storage/ln", params={"from": f"{folder}/{link}", "to": target}).status_code == 201
        r = c.get("/storage/mv", params={"from": folder, "to": moved})
        assert r.status_code == 200 and "COMPLETED" in r.text, r.text
        assert fetch(c, f"{moved}/{link}").content == content
        st = c.get("/storage/stat", params={"name": f"{moved}/{link}"}).json()
        assert st["type"] == "link" and st["target"] == target, st
        disk = root.joinpath(*moved[len("vos://"):].split("/"), link)
        assert os.path.realpath(disk) == os.path.realpath(root.joinpath(*target[len("vos://"):].split("/")))
        assert not os.path.isabs(os.readlink(disk))  # relative: a restore elsewhere keeps it working
        # and deeper again, and the link alone
        assert c.get("/storage/mv", params={"from": moved, "to": "vos://deep/er/x"}).status_code == 200
        assert fetch(c, f"vos://deep/er/x/{link}").content == content
        assert c.get("/storage/mv", params={"from": f"vos://deep/er/x/{link}", "to": "vos://top"}).status_code == 200
        assert fetch(c, "vos://top").content == content
        c.get("/storage/rm", params={"file": "vos://top"})
        c.get("/storage/rmdir", params={"dir": "vos://deep"})
    assert (storage_home.root(service.settings, "hl_bob") / "private.txt").read_bytes() == b"bob's secret"


def test_mv_rewrites_old_relative_links(service, linker):
    """Links planted with targets that would change meaning at another depth are rewritten for
    their new place when mv moves them."""
    c, root = linker
    for folder, rel, moved, content in (
            ("p3/q/r", "../../../users/hl_bob/private.txt", "r3", b"mine"),
            ("p4/q/r/s", "../../../../secrets/signing.key", "s4", b"mine too")):
        (root / folder).mkdir(parents=True)
        os.symlink(rel, root / folder / "old")
        assert fetch(c, f"vos://{folder}/old").content == content
        r = c.get("/storage/mv", params={"from": f"vos://{folder}", "to": f"vos://{moved}"})
        assert r.status_code == 200, r.text
        target = os.path.realpath(root / moved / "old")
        assert target.startswith(os.path.realpath(root) + os.sep), target
        assert fetch(c, f"vos://{moved}/old").content == content
    # a link that points inside the folder that moves moves with it
    assert httpx.put(put_url(c, "vos://d/f.txt"), content=b"inner").status_code == 200
    assert c.get("/storage/ln", params={"from": "vos://d/sub/inner", "to": "vos://d/f.txt"}).status_code == 201
    assert c.get("/storage/mv", params={"from": "vos://d", "to": "vos://e"}).status_code == 200
    assert fetch(c, "vos://e/sub/inner").content == b"inner"
    assert os.path.realpath(root / "e/sub/inner") == os.path.realpath(root / "e/f.txt")


def test_mv_refuses_a_folder_holding_a_link_out(service, linker):
    """A link that leaves the tree (planted by hand) makes mv refuse, rather than carry it."""
    c, root = linker
    (root / "m").mkdir()
    os.symlink(storage_home.root(service.settings, "hl_bob") / "private.txt", root / "m/evil")
    os.symlink(service.settings.secrets_dir, root / "m/keys")
    r = c.get("/storage/mv", params={"from": "vos://m", "to": "vos://m2"})
    assert r.status_code == 400 and "holds a link that leaves your storage" in r.text, r.text
    assert (root / "m").is_dir() and not (root / "m2").exists()
    r = fetch(c, "vos://m/evil")
    assert r.status_code == 400 and "leaves the storage tree" in r.text
    for name in ("evil", "keys"):
        assert c.get("/storage/rm", params={"file": f"vos://m/{name}"}).status_code == 204
    assert c.get("/storage/mv", params={"from": "vos://m", "to": "vos://m2"}).status_code == 200
    assert Path(service.settings.secrets_dir).is_dir()
