"""Lesson publishing: the webhook over real HTTP, publish/status/rollback, the atomic swap, getlatest.

The lessons repository is a real git repository made here; notebooks are tested by the real
harness before publishing (kernels and all), and the service is a real process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import httpx
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from conftest import ROOT, free_port, make_settings, settings_env, start_service
from starbox import keys
from starbox.errors import StarboxError
from starbox.notebooks import getlatest as gl
from starbox.notebooks import harness, state, versions, webhook
from starbox.notebooks import publish as pub

pytestmark = pytest.mark.system

STARBOX = Path(sys.executable).with_name("starbox")


# --- helpers -------------------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def notebook(*sources: str) -> str:
    spec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(new_notebook(cells=[new_code_cell(s) for s in sources], metadata={"kernelspec": spec}))


def commit(repo: Path, files: dict[str, str], message: str, branch: str = "main") -> str:
    """Write files (None deletes) on `branch` and commit; returns the sha."""
    if git(repo, "branch", "--show-current") != branch:
        exists = branch in git(repo, "branch", "--list", branch)
        git(repo, "checkout", "-q", *([] if exists else ["-b"]), branch)
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink()
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    commit(path, {"01_Intro/hello.ipynb": notebook("print('hello')"), "README.txt": "v1\n",
                  "keywords.txt": "tutorial\n"}, "first")
    return path


def cli(s, *args: str, env: dict | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    full = settings_env(s) | {"STARBOX_LESSONS_REPO": s.lessons_repo, "STARBOX_LESSONS_BRANCH": s.lessons_branch,
                              "STARBOX_LESSONS_TEST": str(s.lessons_test)} | (env or {})
    return subprocess.run([str(STARBOX), *args], env=full, capture_output=True, text=True, timeout=timeout)


def live_text(s, rel: str) -> str:
    return (s.notebooks_latest / rel).read_text()


@pytest.fixture
def local(tmp_path):
    """Settings with their own home and a fresh lessons repository; no database needed."""
    repo = make_repo(tmp_path / "lessons-repo")
    return make_settings(tmp_path / "home", lessons_repo=repo), repo


# --- publish, status, rollback -------------------------------------------------------------------

def test_publish_status_rollback(local):
    s, repo = local
    first = pub.publish(s)  # tested by the harness (lessons_test defaults to on)
    assert first.status == "published", first.reason
    assert first.commit == git(repo, "rev-parse", "HEAD")
    assert s.notebooks_latest.is_symlink() and live_text(s, "README.txt") == "v1\n"
    assert not (s.notebooks_latest / ".git").exists()
    assert not os.access(s.notebooks_latest / "README.txt", os.W_OK) or os.geteuid() == 0
    assert oct((s.notebooks_latest / "README.txt").stat().st_mode & 0o777) == "0o444"
    assert "1 notebook: 1 passed" in pub.status(s)["versions"][0]["tested"]

    again = pub.publish(s)
    assert again.status == "unchanged" and again.version == first.version

    second_sha = commit(repo, {"README.txt": "v2\n", "02_More/more.ipynb": notebook("x = 2", "assert x == 2")}, "v2")
    second = pub.publish(s)
    assert second.status == "published" and second.commit == second_sha
    assert live_text(s, "README.txt") == "v2\n" and (s.notebooks_latest / "02_More" / "more.ipynb").is_file()
    assert versions.versions(s) == sorted([first.version, second.version])

    shown = cli(s, "notebooks", "status")
    assert shown.returncode == 0, shown.stderr
    assert second.version in shown.stdout and "published" in shown.stdout
    as_json = json.loads(cli(s, "notebooks", "status", "--json").stdout)
    assert as_json["live"] == second.version and as_json["last"]["result"] == "published"

    back = cli(s, "notebooks", "rollback")
    assert back.returncode == 0, back.stderr
    assert first.version in back.stdout
    assert pub.current(s) == first.version and live_text(s, "README.txt") == "v1\n"
    assert second.version in versions.versions(s)  # kept: `rollback --to` can return to it
    nothing_older = cli(s, "notebooks", "rollback")
    assert nothing_older.returncode == 1 and "no earlier version" in nothing_older.stderr
    assert pub.rollback(s, to=second.version) == (first.version, second.version)
    assert live_text(s, "README.txt") == "v2\n"
    with pytest.raises(StarboxError, match="no version"):
        pub.rollback(s, to="20000101T000000Z-nothere")


def test_failing_set_is_not_published(local):
    s, repo = local
    good = pub.publish(s)
    assert good.status == "published"
    commit(repo, {"03_Broken/broken.ipynb": notebook("a = 1", "1/0"), "README.txt": "broken\n"}, "broken")
    proc = cli(s, "notebooks", "publish", "--timeout", "60")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "not published" in proc.stdout and "03_Broken/broken.ipynb" in proc.stdout
    assert pub.current(s) == good.version and live_text(s, "README.txt") == "v1\n"  # nothing changed for readers
    assert [v for v in versions.versions(s)] == [good.version]
    assert not [p for p in s.notebooks_versions.iterdir() if p.name.startswith(".incoming-")]

    shown = cli(s, "notebooks", "status")
    assert "failed" in shown.stdout and "ZeroDivisionError" in shown.stdout and "03_Broken/broken.ipynb" in shown.stdout
    last = pub.status(s)["last"]
    assert last["result"] == "failed" and last["failures"][0]["cell"] == 1
    assert (state.state_dir(s) / "last-test" / "report.html").is_file()
    assert "ZeroDivisionError" in state.log_path(s).read_text()
    assert "notebooks run anonymously (no test account" in state.log_path(s).read_text()  # no database here

    # Untested publishing (lessons_test off, or --no-test) still never tests nor blocks.
    assert pub.publish(s, test=False).status == "published"
    missing = pub.publish(dataclasses.replace(s, lessons_branch="nope"))
    assert missing.status == "failed" and "'nope' not found" in missing.reason


def test_project_lessons_folder_is_the_default(tmp_path):
    s = make_settings(tmp_path / "home")  # lessons_repo empty: this project's lessons/, copied as it is
    outcome = pub.publish(s, test=False)
    assert outcome.status == "published", outcome.reason
    assert (s.notebooks_latest / "05_Contrib" / "StarboxNotebookTemplate.ipynb").is_file()
    assert (s.notebooks_latest / "keywords.txt").read_text() == (ROOT / "lessons" / "keywords.txt").read_text()
    assert pub.publish(s, test=False).status == "unchanged"


# --- the atomic swap -----------------------------------------------------------------------------

FILES, SIZE = 40, 16_384


def version_files(n: int) -> dict[str, str]:
    """FILES files whose every byte says which version they belong to, ending in END."""
    out = {}
    for i in range(FILES):
        head = f"version {n:03d} file {i:02d}\n"
        out[f"d{i % 4}/f{i:02d}.txt"] = head + "x" * (SIZE - len(head) - 4) + "END\n"
    out["VERSION"] = f"{n:03d}\n"
    return out


def test_swap_is_atomic_for_readers(local):
    s, repo = local
    s = dataclasses.replace(s, lessons_test=False)
    commit(repo, version_files(0), "v0")
    assert pub.publish(s).status == "published"
    names = {f"d{k}" for k in range(4)} | {"VERSION", "01_Intro", "README.txt", "keywords.txt"}
    problems: list[str] = []
    reads = [0]
    stop = threading.Event()

    def reader() -> None:
        latest = s.notebooks_latest
        while not stop.is_set():
            try:
                listed = set(os.listdir(latest))
                if listed != names:
                    problems.append(f"listing {sorted(listed)}")
                for i in range(0, FILES, 3):
                    data = (latest / f"d{i % 4}" / f"f{i:02d}.txt").read_text()
                    if len(data) != SIZE or not data.endswith("END\n") or f"file {i:02d}" not in data[:30]:
                        problems.append(f"half-written f{i:02d}: {len(data)} bytes")
                    reads[0] += 1
                for sub in ("d0", "d3"):
                    if len(os.listdir(latest / sub)) != FILES // 4:
                        problems.append(f"{sub} incomplete")
            except OSError as exc:  # a missing folder or file
                problems.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    published = []
    try:
        for n in range(1, 9):
            commit(repo, version_files(n), f"v{n}")
            outcome = pub.publish(s)
            assert outcome.status == "published", outcome.reason
            published.append(outcome.version)
            assert live_text(s, "VERSION") == f"{n:03d}\n"
        for i in range(200):  # then many more swaps, back and forth between the last two versions
            pub.rollback(s, to=published[-1 - i % 2])
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not problems, problems[:5]
    assert reads[0] > 200
    # pruned: the live one and KEEP before it
    assert len(versions.versions(s)) == versions.KEEP + 1, versions.versions(s)
    assert pub.current(s) == published[-2] and live_text(s, "VERSION") == "007\n"
    # Plain rollbacks undo one change at a time: v8 again (forced), then the swaps before it.
    assert pub.publish(s, force=True).status == "published" and live_text(s, "VERSION") == "008\n"
    assert len(versions.versions(s)) == versions.KEEP + 1
    assert [pub.rollback(s)[1] for _ in range(3)] == [published[-2], published[-1], published[-2]]


# --- the webhook -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hook(starbox, tmp_path_factory):
    """A service process whose lessons come from a test repository (tested before publishing)."""
    repo = make_repo(tmp_path_factory.mktemp("hook") / "lessons-repo")
    s = dataclasses.replace(starbox, service_port=free_port(), lessons_repo=str(repo), lessons_test=True)
    # This home is the session's (other tests' JupyterLab shows its lessons): set its published
    # lessons aside, start clean, and put them back afterwards.
    saved = [(path, path.with_name(path.name + ".saved-by-test-publish"))
             for path in (s.notebooks_latest, s.notebooks_versions)]
    for path, aside in saved:
        if os.path.lexists(path):
            os.rename(path, aside)
    keys.webhook_secret(s)  # the admin's `starbox notebooks webhook`: without a secret, 404
    proc = start_service(s, STARBOX_LESSONS_REPO=str(repo), STARBOX_LESSONS_TEST="true")
    try:
        yield s, repo
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for path, aside in saved:
            if path.is_symlink():
                path.unlink()
            elif path.exists():
                versions.remove_tree(path)
            if os.path.lexists(aside):
                os.rename(aside, path)


def push_event(repo: Path, branch: str = "main", full_name: str = "starbox-test/lessons") -> dict:
    return {"ref": f"refs/heads/{branch}", "before": "0" * 40, "after": git(repo, "rev-parse", branch),
            "repository": {"full_name": full_name, "name": full_name.split("/")[1],
                           "clone_url": f"https://github.com/{full_name}.git"},
            "pusher": {"name": "t"}, "nonce": uuid.uuid4().hex}


def send(s, payload: dict, *, signature: str | None = "good", delivery: str | None = None,
         event: str = "push", secret: str | None = None) -> httpx.Response:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event,
               "X-GitHub-Delivery": delivery or str(uuid.uuid4())}
    if signature == "good":
        headers["X-Hub-Signature-256"] = webhook.sign(secret or keys.webhook_secret(s), body)
    elif signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return httpx.post(f"{s.service_url}/hooks/notebooks", content=body, headers=headers, timeout=30)


def wait_for(s, predicate, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = pub.status(s)
        if predicate(info):
            return info
        time.sleep(0.2)
    raise AssertionError(f"timed out; status: {json.dumps(pub.status(s), indent=1)}")


def deliveries(s) -> set[str]:
    path = state.state_dir(s) / "deliveries.sqlite"
    if not path.exists():
        return set()
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT id FROM deliveries")}


def test_webhook_signature(hook):
    s, repo = hook
    payload = push_event(repo)
    wrong = webhook.sign("wrong secret", json.dumps(payload).encode())
    for signature in (None, "sha256=" + "0" * 64, "sha1=abc", wrong):
        delivery = str(uuid.uuid4())
        r = send(s, payload, signature=signature, delivery=delivery)
        assert r.status_code == 401, r.text
        assert "X-Hub-Signature-256" in r.json()["reason"]
        assert delivery not in deliveries(s)  # refused before any work: nothing recorded
    assert pub.current(s) is None and pub.status(s)["last"] is None
    pong = send(s, {"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert pong.status_code == 200 and pong.json()["reason"] == "pong"
    # GitHub's other content type: the JSON in a `payload` form field, signed as sent.
    form = urlencode({"payload": json.dumps({"zen": "form", "hook_id": 2})}).encode()
    r = httpx.post(f"{s.service_url}/hooks/notebooks", content=form, timeout=30, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "ping",
        "X-Hub-Signature-256": webhook.sign(keys.webhook_secret(s), form)})
    assert r.status_code == 200 and r.json()["reason"] == "pong"


def test_webhook_publishes_then_ignores_replays_and_other_branches(hook):
    s, repo = hook
    sha = commit(repo, {"README.txt": "from the webhook\n"}, "webhook v2")
    payload, delivery = push_event(repo), str(uuid.uuid4())
    r = send(s, payload, delivery=delivery)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "accepted" and r.json()["commit"] == sha[:12]
    info = wait_for(s, lambda i: i["last"] and i["last"].get("commit") == sha and not i["running"])
    assert info["last"]["result"] == "published", info["last"]
    assert info["last"]["trigger"].startswith(f"webhook {delivery}")
    assert live_text(s, "README.txt") == "from the webhook\n"
    assert f"notebooks run as the test account {harness.TEST_ACCOUNT}" in state.log_path(s).read_text()
    live = pub.current(s)

    # The same delivery again (GitHub's "redeliver", or a replayed capture): ignored.
    again = send(s, payload, delivery=delivery)
    assert again.status_code == 200 and again.json()["status"] == "ignored"
    assert "already handled" in again.json()["reason"]
    # The same delivery id with another body, and the same signed body under a new id: ignored.
    assert send(s, push_event(repo), delivery=delivery).json()["status"] == "ignored"
    assert send(s, payload).json()["status"] == "ignored"

    # Another branch: ignored, nothing fetched.
    commit(repo, {"README.txt": "on a feature branch\n"}, "feature", branch="feature")
    other = send(s, push_event(repo, branch="feature"))
    assert other.status_code == 200 and other.json()["status"] == "ignored"
    assert "refs/heads/main" in other.json()["reason"]
    tag = send(s, {**push_event(repo, branch="main"), "ref": "refs/tags/v1"})
    assert tag.json()["status"] == "ignored"
    git(repo, "checkout", "-q", "main")
    time.sleep(1)
    assert pub.current(s) == live and live_text(s, "README.txt") == "from the webhook\n"
    assert not pub.status(s)["running"]
    no_delivery = httpx.post(f"{s.service_url}/hooks/notebooks", content=b"{}", timeout=10, headers={
        "X-GitHub-Event": "push", "X-Hub-Signature-256": webhook.sign(keys.webhook_secret(s), b"{}")})
    assert no_delivery.status_code == 400


def test_webhook_failing_set_is_not_published(hook):
    s, repo = hook
    live = pub.current(s) or pub.publish(s).version
    sha = commit(repo, {"02_Bad/bad.ipynb": notebook("raise RuntimeError('catalog moved')")}, "bad lesson")
    r = send(s, push_event(repo))
    assert r.status_code == 202, r.text
    info = wait_for(s, lambda i: i["last"] and i["last"].get("commit") == sha and not i["running"])
    assert info["last"]["result"] == "failed"
    assert "02_Bad/bad.ipynb" in info["last"]["reason"] and "catalog moved" in info["last"]["reason"]
    assert pub.current(s) == live
    shown = cli(s, "notebooks", "status")
    assert "failed" in shown.stdout and "RuntimeError: catalog moved" in shown.stdout
    commit(repo, {"02_Bad/bad.ipynb": None}, "remove the bad lesson")


def test_repository_matching(tmp_path):
    url = make_settings(tmp_path, lessons_repo="https://github.com/Starbox-Org/Lessons.git")
    assert webhook.repository_matches(url, {"full_name": "starbox-org/lessons"})[0]
    assert webhook.repository_matches(url, {"full_name": "x/y", "ssh_url": "git@github.com:Starbox-Org/Lessons.git"})[0]
    assert not webhook.repository_matches(url, {"full_name": "someone/lessons",
                                            "clone_url": "https://github.com/someone/lessons.git"})[0]
    assert not webhook.repository_matches(url, {})[0]
    ssh = make_settings(tmp_path, lessons_repo="git@github.com:starbox-org/lessons")
    assert webhook.repository_matches(ssh, {"full_name": "Starbox-Org/Lessons"})[0]
    local = make_settings(tmp_path, lessons_repo=str(tmp_path))
    assert webhook.repository_matches(local, {"full_name": "anything/at-all"})[0]


def test_webhook_with_a_url_repository_checks_its_name(hook, tmp_path):
    """A URL setting: only pushes naming that owner/name count (the fetch itself fails here: no server)."""
    s = dataclasses.replace(hook[0], service_port=free_port(), lessons_repo="")
    url = "http://127.0.0.1:9/starbox-org/lessons.git"
    proc = start_service(s, STARBOX_LESSONS_REPO=url)
    try:
        repo = make_repo(tmp_path / "r")
        wrong = send(s, push_event(repo, full_name="someone/lessons"))
        assert wrong.status_code == 200 and "not the configured one" in wrong.json()["reason"]
        right = send(s, push_event(repo, full_name="Starbox-Org/Lessons"))
        assert right.status_code == 202, right.text
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- getlatest ----------------------------------------------------------------------------------

def test_getlatest_keeps_the_users_edits(local, tmp_path):
    s, repo = local
    s = dataclasses.replace(s, lessons_test=False)
    with pytest.raises(StarboxError, match="no lessons are published"):
        gl.getlatest(s, tmp_path / "mine")
    commit(repo, {"01_Intro/b.ipynb": notebook("print('b1')")}, "b")
    pub.publish(s)
    mine = tmp_path / "mine"
    proc = cli(s, "getlatest", str(mine))
    assert proc.returncode == 0, proc.stderr
    assert "new      01_Intro/hello.ipynb" in proc.stdout
    hello, b = mine / "01_Intro" / "hello.ipynb", mine / "01_Intro" / "b.ipynb"
    assert hello.read_text() == live_text(s, "01_Intro/hello.ipynb")
    assert os.access(hello, os.W_OK) and oct(hello.stat().st_mode & 0o777) == "0o644"
    manifest = json.loads((mine / gl.MANIFEST).read_text())
    assert manifest["files"]["01_Intro/hello.ipynb"] == hashlib.sha256(hello.read_bytes()).hexdigest()

    users_edit = notebook("print('hello')", "# my own notes and work")
    hello.write_text(users_edit)
    (mine / "my_scratch.ipynb").write_text(notebook("1"))
    commit(repo, {"01_Intro/hello.ipynb": notebook("print('hello, v2')"), "01_Intro/b.ipynb": notebook("print('b2')"),
                  "04_New/c.ipynb": notebook("print('c')"), "README.txt": None}, "v2")
    pub.publish(s)

    result = gl.getlatest(s, mine)
    beside = f"01_Intro/hello.new-{date.today():%Y%m%d}.ipynb"
    assert result.kept == [("01_Intro/hello.ipynb", beside)]
    assert hello.read_text() == users_edit  # never overwritten
    assert (mine / beside).read_text() == live_text(s, "01_Intro/hello.ipynb")
    assert result.updated == ["01_Intro/b.ipynb"] and "print('b2')" in b.read_text()
    assert "04_New/c.ipynb" in result.new and (mine / "04_New" / "c.ipynb").is_file()
    assert result.gone == ["README.txt"] and (mine / "README.txt").exists()  # left alone
    assert (mine / "my_scratch.ipynb").exists()
    assert any(beside in line for line in result.lines())

    # Once more with nothing new: the edit is still kept, nothing else moves.
    third = gl.getlatest(s, mine)
    assert third.kept == [("01_Intro/hello.ipynb", beside)] and not third.new and not third.updated
    assert hello.read_text() == users_edit

    # The JupyterLab terminal's plain `getlatest` command.
    script = ROOT / "appliance" / "bin" / "getlatest"
    env = settings_env(s) | {"PATH": f"{STARBOX.parent}:{os.environ['PATH']}", "HOME": str(tmp_path / "h")}
    run = subprocess.run([str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "h" / "notebooks" / "04_New" / "c.ipynb").is_file()
