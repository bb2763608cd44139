"""The toolkit's in-process mode (starbox.inprocess) beyond the shared scenario of test_toolkit:
who may use it, what it does to jobs, and that a result read only in part stops its query."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from conftest import make_settings, settings_env, until
from starbox import database, inprocess
from starbox.client import http as _http
from starbox import queryClient as qc
from starbox.errors import Unavailable

USER, PASSWORD = "ipuser", "ip-password"
BIG = "SELECT * FROM smash_sim.object"
SLEEP = "SELECT 1 AS done FROM pg_sleep({s})"


@pytest.fixture(scope="module")
def token(service):
    return service.add_user(USER, PASSWORD)


def _active(settings, role: str) -> list[str]:
    with database.connect_admin(settings) as conn:
        return [r[0] for r in conn.execute(
            "SELECT query FROM pg_stat_activity WHERE usename = %s AND state = 'active'", (role,))]


def _job_phase(service, token: str, jobid: str) -> str:
    with service.client(token) as c:
        return c.get("/query/status", params={"jobid": jobid}).text


@pytest.mark.unit
def test_refused_without_the_appliances_secrets(tmp_path):
    """Somewhere with no appliance (or not its owner): one clear message, and no new secrets."""
    s = make_settings(tmp_path / "nowhere")
    with pytest.raises(Unavailable, match="in-process mode needs the appliance's secrets"):
        inprocess.start(s)
    assert not s.secrets_dir.exists()
    assert _http.mode() == "http"


@pytest.mark.system
def test_mode_setting_gives_a_toolkit_message(tmp_path):
    env = settings_env(make_settings(tmp_path / "nowhere")) | {"STARBOX_TOOLKIT_MODE": "inprocess"}
    code = textwrap.dedent("""
        from starbox import queryClient as qc
        try:
            qc.query(sql="SELECT 1")
        except qc.queryClientError as exc:
            print(exc.message)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Error: the toolkit's in-process mode needs the appliance's secrets")
    assert "Traceback" not in out.stderr

    env["STARBOX_TOOLKIT_MODE"] = "carrier-pigeon"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert "STARBOX_TOOLKIT_MODE is one of http, inprocess" in out.stderr


@pytest.mark.system
@pytest.mark.parametrize("mode", ["http", "inprocess"])
def test_result_read_in_part_stops_its_query(service, token, mode):
    """A caller that stops reading (a notebook interrupted mid-download) ends the query at once,
    over HTTP and in-process alike, and the next query runs normally."""
    role = f"starbox_u_{USER}"
    if mode == "inprocess":
        inprocess.start(service.settings)
    try:
        with _http.stream("GET", f"{service.url}/query/query", tok=token,
                          params={"sql": BIG, "ofmt": "csv"}) as r:
            assert r.status_code == 200
            chunks = r.iter_bytes()  # held: a dropped iterator would close the response at once
            assert next(chunks).startswith(b"id,fieldid,ra,dec,")
            assert any("smash_sim.object" in q for q in _active(service.settings, role))
        assert until(lambda: not _active(service.settings, role)), _active(service.settings, role)
        again = _http.request("GET", f"{service.url}/query/query", tok=token, params={"sql": "SELECT 2 AS two"})
        assert again.text == "two\n2\n"
    finally:
        inprocess.stop()


@pytest.mark.system
def test_does_not_touch_the_services_jobs(service, token):
    """Starting in-process must not end the jobs the service is running (no start-up recovery)."""
    with service.client(token) as c:
        jobid = c.get("/query/query", params={"sql": SLEEP.format(s=3), "async": "True"}).text
    assert until(lambda: _job_phase(service, token, jobid) == "EXECUTING", 10)
    inprocess.start(service.settings)
    try:
        assert qc.status(token, jobid) in ("EXECUTING", "COMPLETED")
        assert until(lambda: qc.status(token, jobid) == "COMPLETED", 30)
        assert qc.results(token, jobid) == "done\n1\n"
    finally:
        inprocess.stop()


@pytest.mark.system
def test_jobs_of_an_ended_process_end_as_error(service, token):
    """A process that ends with async jobs of its own: they end as ERROR with the reason, and
    their queries stop; nothing is left EXECUTING."""
    code = textwrap.dedent(f"""
        import time
        from starbox import inprocess, settings, queryClient as qc
        inprocess.start(settings.get())
        running = qc.query({token!r}, sql={SLEEP.format(s=120)!r}, async_=True)
        queued = [qc.query({token!r}, sql={SLEEP.format(s=120)!r}, async_=True) for _ in range(3)]
        while qc.status({token!r}, running) != "EXECUTING":
            time.sleep(0.1)
        print(running, *queued)
    """)
    out = subprocess.run([sys.executable, "-c", code], env=settings_env(service.settings),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    jobids = out.stdout.split()
    assert len(jobids) == 4
    for jobid in jobids:
        assert _job_phase(service, token, jobid) == "ERROR"
        with service.client(token) as c:
            assert "in-process mode) ended before the job finished" in c.get("/query/error", params={"jobid": jobid}).text
    assert not any("pg_sleep" in q for q in _active(service.settings, f"starbox_u_{USER}"))
