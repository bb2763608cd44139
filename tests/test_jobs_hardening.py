"""Issue 11, items 6, 7 (jobs), 9 and 11 (jobs): anonymous jobs are reachable only by their
random id (never listed, never deleted in bulk), live a short time with bounded files and run
time; the job queue is fair between owners; a removed account leaves no job or file behind.

Every attack runs against a live service process of its own (settings below), on real HTTP
and the session's real PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import time
import xml.etree.ElementTree as ET

import httpx
import pytest

from conftest import Service, free_port, run_cli, start_service, until
from starbox import database, jobs

UWS = "{http://www.ivoa.net/xml/UWS/v1.0}"
ANON_TIMEOUT, ANON_QUEUED, ANON_LIFETIME, ANON_MB = 15, 2, 600, 1
LONG = "SELECT pg_sleep(60) AS s"
ANON = {"X-DL-AuthToken": "anonymous.0.0.anon_access"}


@pytest.fixture(scope="module")
def svc(starbox):
    """Two job workers, one running job per user, and small anonymous limits."""
    with database.connect_admin(starbox) as conn:  # no anonymous job of earlier tests counts here
        conn.execute("DELETE FROM starbox.jobs WHERE owner = 'anonymous'")
    s = dataclasses.replace(starbox, service_port=free_port())
    proc = start_service(s, STARBOX_JOB_WORKERS="2", STARBOX_USER_JOBS_RUNNING="1",
                         STARBOX_ANON_JOBS_QUEUED=str(ANON_QUEUED), STARBOX_ANON_ASYNC_TIMEOUT_MAX=str(ANON_TIMEOUT),
                         STARBOX_ANON_JOB_LIFETIME=str(ANON_LIFETIME), STARBOX_ANON_JOB_MB=str(ANON_MB))
    yield Service(s, proc)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture
def anon(svc):
    """An anonymous client; its jobs are stopped and gone after the test."""
    with httpx.Client(base_url=svc.url, timeout=60) as c:
        yield c
    with database.connect_admin(svc.settings) as conn:
        conn.execute("DELETE FROM starbox.jobs WHERE owner = 'anonymous'")
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'starbox_anon'"
                     " AND query ILIKE '%%pg_sleep%%'")
    assert until(lambda: sleeping(svc.settings, "starbox_anon") == 0, 10)


def sleeping(settings, role: str) -> int:
    with database.connect_admin(settings) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND state = 'active'"
                            " AND query ILIKE '%%pg_sleep%%'", (role,)).fetchone()[0]


def submit(c: httpx.Client, sql: str, timeout: int | None = None, **params) -> str:
    headers = {"X-DL-TimeoutRequest": str(timeout)} if timeout else {}
    r = c.get("/query/query", params={"sql": sql, "async": "True", **params}, headers=headers)
    assert r.status_code == 200, r.text
    assert re.fullmatch(r"[0-9a-f]{20}", r.text), r.text
    return r.text


def phase(c: httpx.Client, jobid: str) -> str:
    return c.get("/query/status", params={"jobid": jobid}).text


def wait_phase(c: httpx.Client, jobid: str, wanted: set[str], timeout: float = 30) -> str:
    until(lambda: phase(c, jobid) in wanted, timeout)
    return phase(c, jobid)


def job_row(settings, jobid: str) -> dict | None:
    from psycopg.rows import dict_row

    with database.connect_admin(settings) as conn:
        return conn.cursor(row_factory=dict_row).execute("SELECT * FROM starbox.jobs WHERE jobid = %s",
                                                         (jobid,)).fetchone()


def job_files(settings, jobid: str) -> list:
    return sorted((settings.home / "jobs").glob(f"{jobid}*"))


def votable(rows: int) -> bytes:
    from astropy.table import Table

    out = io.BytesIO()
    Table({"ra": [float(i % 360) for i in range(rows)], "dec": [0.0] * rows}).write(out, format="votable")
    return out.getvalue()


# -- item 6: anonymous jobs are reachable by id only ------------------------------------------------

@pytest.mark.unit
def test_job_ids_are_unguessable():
    assert "secrets.token_" in inspect.getsource(jobs.new_jobid)
    ids = {jobs.new_jobid() for _ in range(2000)}
    assert len(ids) == 2000 and all(re.fullmatch(r"[0-9a-f]{20}", i) for i in ids)  # 80 random bits


@pytest.mark.system
def test_anonymous_jobs_are_never_listed_nor_bulk_deleted(svc, anon):
    mine = submit(anon, "SELECT 1 AS x")
    assert wait_phase(anon, mine, {"COMPLETED"}) == "COMPLETED"
    tap_job = anon.post("/tap/async", data={"QUERY": "SELECT TOP 1 hip FROM hipparcos.main"}).headers["location"]
    with httpx.Client(base_url=svc.url, headers=ANON, timeout=60) as other:  # another anonymous caller
        listed = other.get("/res/findJobs")
        assert listed.status_code == 200 and listed.text.splitlines()[1:] == [] and mine not in listed.text
        assert other.get("/res/findJobs", params={"format": "json"}).text == '"[]"'
        assert other.get("/res/findJobs", params={"status": "COMPLETED"}).text.splitlines()[1:] == []
        refs = ET.fromstring(other.get("/tap/async").content)
        assert refs.tag == f"{UWS}jobs" and len(refs) == 0
        r = other.get("/res/findJobs", params={"option": "delete"})
        assert r.status_code == 403 and "cannot be listed or deleted in bulk" in r.text and "jobid" in r.text
        assert other.get("/res/findJobs", params={"option": "delete", "status": "COMPLETED"}).status_code == 403
    assert phase(anon, mine) == "COMPLETED" and job_row(svc.settings, mine) is not None
    # The id is the key: whoever holds it reaches that one job, and only it.
    assert anon.get("/query/results", params={"jobid": mine}).text == "x\n1\n"
    one = anon.get("/res/findJobs", params={"jobid": mine}).text
    assert mine in one and len(one.splitlines()) == 2
    assert httpx.get(tap_job).status_code == 200
    assert anon.get("/res/findJobs", params={"jobid": mine, "option": "delete"}).text == "deleted 1 job(s)"
    assert anon.get("/query/status", params={"jobid": mine}).status_code == 404
    assert job_files(svc.settings, mine) == []


@pytest.mark.system
def test_a_users_jobs_are_still_listed_and_deleted(svc, anon):
    token = svc.add_user("jh_lister")
    with svc.client(token) as c:
        jobid = submit(c, "SELECT 2 AS y")
        assert wait_phase(c, jobid, {"COMPLETED"}) == "COMPLETED"
        stranger = submit(anon, "SELECT 3 AS z")
        listed = c.get("/res/findJobs").text
        assert jobid in listed and stranger not in listed
        assert c.get("/res/findJobs", params={"option": "delete"}).text == "deleted 1 job(s)"
        assert c.get("/query/status", params={"jobid": jobid}).status_code == 404
    assert phase(anon, stranger) in ("QUEUED", "EXECUTING", "COMPLETED")  # a user's delete is theirs only


@pytest.mark.system
def test_anonymous_jobs_cannot_write_anywhere(anon):
    for out in ("vos://x.csv", "mydb://t"):
        r = anon.get("/query/query", params={"sql": "SELECT 1", "async": "True", "out": out})
        assert r.status_code == 401 and "log in" in r.text, r.text


# -- item 9: a fair queue ----------------------------------------------------------------------------

@pytest.mark.system
def test_a_users_job_runs_while_anonymous_jobs_run_and_queue(svc, anon):
    first = submit(anon, LONG, timeout=3600)  # asks for an hour
    assert wait_phase(anon, first, {"EXECUTING"}, 15) == "EXECUTING"
    second = submit(anon, LONG, timeout=3600)
    token = svc.add_user("jh_fair")
    with svc.client(token) as c:
        quick = submit(c, "SELECT 1 AS one")
        done = wait_phase(c, quick, {"COMPLETED", "ERROR"}, 12)
        # Measured while the anonymous ones still hold their places: one running, one waiting
        # (anonymous callers run one job at a time, though a worker is free).
        states = phase(anon, first), phase(anon, second)
        assert done == "COMPLETED", c.get("/query/error", params={"jobid": quick}).text
        assert states == ("EXECUTING", "QUEUED")
        assert c.get("/query/results", params={"jobid": quick}).text == "one\n1\n"
    assert sleeping(svc.settings, "starbox_anon") == 1
    # The hour asked for is cut to anon_async_timeout_max.
    assert job_row(svc.settings, first)["timeout_s"] == ANON_TIMEOUT
    assert wait_phase(anon, first, {"ERROR", "COMPLETED"}, ANON_TIMEOUT + 30) == "ERROR"
    assert "time limit" in anon.get("/query/error", params={"jobid": first}).text
    row = job_row(svc.settings, first)
    assert (row["finished"] - row["started"]).total_seconds() < ANON_TIMEOUT + 5
    assert wait_phase(anon, second, {"EXECUTING"}, 15) == "EXECUTING"  # then the next one in line
    assert anon.get("/query/abort", params={"jobid": second}).text == "ABORTED"


@pytest.mark.system
def test_anonymous_tap_jobs_get_the_time_cap(anon):
    r = anon.post("/tap/async", data={"QUERY": "SELECT TOP 1 hip FROM hipparcos.main", "EXECUTIONDURATION": "86400"})
    job = r.headers["location"]
    assert httpx.get(f"{job}/executionduration").text == str(ANON_TIMEOUT)
    assert httpx.post(f"{job}/executionduration", data={"EXECUTIONDURATION": "0"}).status_code == 303
    assert httpx.get(f"{job}/executionduration").text == str(ANON_TIMEOUT)


@pytest.mark.system
def test_capabilities_tell_each_caller_its_own_job_limits(svc, anon):
    """TAPRegExt's executionDuration and retentionPeriod: an anonymous caller's, or a user's."""
    def limits(c: httpx.Client) -> tuple[str, str]:
        doc = c.get("/tap/capabilities").text
        return (re.search(r"<executionDuration><default>(\d+)</default><hard>(\d+)</hard>", doc).group(2),
                re.search(r"<retentionPeriod><default>\d+</default><hard>(\d+)</hard>", doc).group(1))
    assert limits(anon) == (str(ANON_TIMEOUT), str(ANON_LIFETIME))
    with svc.client(svc.add_user("jh_caps")) as user:
        assert limits(user) == (str(svc.settings.async_timeout_max), "2592000")


@pytest.mark.system
def test_users_take_turns(svc):
    hog, other = svc.add_user("jh_hog"), svc.add_user("jh_other")
    with svc.client(hog) as h, svc.client(other) as o:
        hogs = [submit(h, "SELECT pg_sleep(20) AS s") for _ in range(3)]
        assert wait_phase(h, hogs[0], {"EXECUTING"}, 15) == "EXECUTING"
        quick = submit(o, "SELECT 1 AS one")
        assert wait_phase(o, quick, {"COMPLETED"}, 12) == "COMPLETED"
        # One job per user at a time (user_jobs_running=1): the hog's others still wait.
        assert [phase(h, j) for j in hogs] == ["EXECUTING", "QUEUED", "QUEUED"]
        for j in hogs:
            h.get("/query/abort", params={"jobid": j})
        assert until(lambda: sleeping(svc.settings, "starbox_u_jh_hog") == 0, 15)


@pytest.mark.system
def test_anonymous_queue_is_bounded(svc, anon):
    running = submit(anon, LONG)
    assert wait_phase(anon, running, {"EXECUTING"}, 15) == "EXECUTING"
    waiting = [submit(anon, LONG) for _ in range(ANON_QUEUED)]
    r = anon.get("/query/query", params={"sql": "SELECT 1", "async": "True"})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0, r.text
    assert "anonymous jobs are already waiting" in r.text and "log in" in r.text
    r = anon.post("/tap/async", data={"QUERY": "SELECT TOP 1 hip FROM hipparcos.main"})  # PENDING counts too
    assert r.status_code == 429 and "Retry-After" in r.headers and b"already waiting" in r.content
    with svc.client(svc.add_user("jh_queue")) as c:  # logged-in users have queues of their own
        assert wait_phase(c, submit(c, "SELECT 1 AS one"), {"COMPLETED"}, 12) == "COMPLETED"
    for jobid in waiting:
        assert anon.get("/query/abort", params={"jobid": jobid}).text == "ABORTED"
    assert re.fullmatch(r"[0-9a-f]{20}", anon.get("/query/query", params={"sql": "SELECT 1", "async": "True"}).text)


# -- item 7 (jobs): anonymous jobs are short-lived and bounded; a user's job bytes are counted -----

@pytest.mark.system
def test_anonymous_jobs_live_a_short_time(svc, anon):
    files = {"t": ("t.xml", votable(3), "application/x-votable+xml")}
    r = anon.post("/tap/async", data={"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}, files=files)
    assert r.status_code == 303, r.text
    job = r.headers["location"]
    tap_id = job.rsplit("/", 1)[1]
    assert [p.name for p in job_files(svc.settings, tap_id)] == [f"{tap_id}-upload-t.vot"]
    dl_id = submit(anon, "SELECT 1 AS x")
    assert wait_phase(anon, dl_id, {"COMPLETED"}) == "COMPLETED" and job_files(svc.settings, dl_id)
    for jobid in (tap_id, dl_id):  # not the table's 7 days: anon_job_lifetime
        row = job_row(svc.settings, jobid)
        assert abs((row["destruction"] - row["created"]).total_seconds() - ANON_LIFETIME) < 5
    assert httpx.post(f"{job}/destruction", data={"DESTRUCTION": "2099-01-01T00:00:00Z"}).status_code == 303
    row = job_row(svc.settings, tap_id)
    assert (row["destruction"] - row["created"]).total_seconds() <= ANON_LIFETIME  # it cannot be extended
    with database.connect_admin(svc.settings) as conn:  # an hour later...
        conn.execute("UPDATE starbox.jobs SET destruction = now() - interval '1 second' WHERE jobid = ANY(%s)",
                     ([tap_id, dl_id],))
    time.sleep(1.1)  # purges run at most once a second
    assert httpx.get(job).status_code == 404  # (the request purges)
    assert anon.get("/query/status", params={"jobid": dl_id}).status_code == 404  # Data Lab's anonymous jobs too
    assert job_files(svc.settings, tap_id) == [] and job_files(svc.settings, dl_id) == []


@pytest.mark.system
def test_anonymous_results_and_uploads_are_bounded(svc, anon):
    big = "SELECT repeat('x', 1000) AS s FROM generate_series(1, 3000)"  # 3 MB of CSV
    jobid = submit(anon, big)
    assert wait_phase(anon, jobid, {"ERROR", "COMPLETED"}) == "ERROR"
    error = anon.get("/query/error", params={"jobid": jobid}).text
    assert f"larger than the {ANON_MB} MB an anonymous job may keep" in error, error
    assert job_files(svc.settings, jobid) == [] and not list((svc.settings.home / "jobs").glob(".starbox-part-*"))
    files = {"t": ("t.xml", votable(20_000), "application/x-votable+xml")}
    assert len(files["t"][1]) > ANON_MB << 20
    r = anon.post("/tap/async", data={"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}, files=files)
    assert r.status_code == 413 and b"at most 1 MB of uploaded tables" in r.content, r.text
    small = {"t": ("t.xml", votable(10_000), "application/x-votable+xml")}  # two halves add up too
    r = anon.post("/tap/async", data={"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}, files=small)
    job = r.headers["location"]
    r = httpx.post(f"{job}/parameters", data={"UPLOAD": "u,param:u"},
                   files={"u": ("u.xml", small["t"][1], "application/x-votable+xml")})
    assert r.status_code == 413 and b"at most 1 MB" in r.content
    with svc.client(svc.add_user("jh_big")) as c:  # a user's results are bounded by the quota instead
        mine = submit(c, big)
        assert wait_phase(c, mine, {"ERROR", "COMPLETED"}) == "COMPLETED"
        assert len(c.get("/query/results", params={"jobid": mine}).content) > 3_000_000


# -- item 11 (jobs) and the quota's count: job_bytes, remove_owner --------------------------------

@pytest.mark.system
def test_job_bytes_and_account_removal(svc, admin):
    name = "jh_gone"
    token = svc.add_user(name)
    jobs_dir = svc.settings.home / "jobs"
    with svc.client(token) as c:
        done = submit(c, "SELECT hip, ra, dec FROM hipparcos.main ORDER BY hip LIMIT 2000")
        assert wait_phase(c, done, {"COMPLETED"}) == "COMPLETED"
        files = {"t": ("t.xml", votable(10), "application/x-votable+xml")}
        r = c.post("/tap/async", data={"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"}, files=files)
        pending = r.headers["location"].rsplit("/", 1)[1]
        stored = job_files(svc.settings, done) + job_files(svc.settings, pending)
        assert len(stored) == 2
        assert jobs.job_bytes(admin, name, jobs_dir) == sum(p.stat().st_size for p in stored) > 0
        assert jobs.job_bytes(admin, name) == jobs.job_bytes(admin, name, jobs_dir)  # the rows know the paths
        running = submit(c, "SELECT pg_sleep(3) AS s")
        assert wait_phase(c, running, {"EXECUTING"}, 15) == "EXECUTING"
    out = run_cli(svc.settings, "accounts", "remove", name, "--yes")
    assert out.returncode == 0 and f"removed {name}" in out.stdout, out.stderr
    assert admin.execute("SELECT count(*) FROM starbox.jobs WHERE owner = %s", (name,)).fetchone()[0] == 0
    assert not any(p.exists() for p in stored)
    # The job that was running when the account went leaves no result behind once it ends.
    time.sleep(3.5)
    assert until(lambda: job_files(svc.settings, running) == [], 15)
    assert jobs.job_bytes(admin, name, jobs_dir) == 0
    again = svc.add_user(name)  # a new account of the same name inherits nothing
    with svc.client(again) as c:
        assert c.get("/res/findJobs").text.splitlines()[1:] == []
        assert c.get("/query/status", params={"jobid": done}).status_code == 404


@pytest.mark.system
def test_files_whose_job_is_gone_are_swept(svc, anon):
    """The runner's periodic sweep (here called at once): a file named after a job that no
    longer exists goes (a service killed mid-write, a job that ended after its account went);
    the files of live jobs stay."""
    from starbox.service.pools import Pools

    jobs_dir = svc.settings.home / "jobs"
    live = submit(anon, "SELECT 1 AS x")
    assert wait_phase(anon, live, {"COMPLETED"}) == "COMPLETED"
    stray = [jobs_dir / f"{jobs.new_jobid()}.csv", jobs_dir / f"{jobs.new_jobid()}-upload-t.vot"]
    for path in stray:
        path.write_text("left behind\n")
    pools = Pools(svc.settings)
    runner = jobs.JobRunner(svc.settings, pools)
    try:
        runner.sweep_orphans()  # (the services' own sweeps may be quicker: the files go all the same)
    finally:
        runner.shutdown()
        pools.close()
    assert not any(p.exists() for p in stray) and job_files(svc.settings, live)
