"""Shared fixtures: a real, throwaway Starbox cluster with both extensions and the sample catalogs."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from starbox import appliance, database, settings as settings_mod
from starbox.cluster import Cluster

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "test-output"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_settings(home: Path, **extra) -> settings_mod.Settings:
    # Every port free, so the suite also runs beside a developer's own appliance.
    env = {"STARBOX_HOME": str(home), "STARBOX_PG_PORT": str(free_port()), "STARBOX_SERVICE_PORT": str(free_port()),
           "STARBOX_JUPYTER_PORT": str(free_port()), "STARBOX_VOILA_PORT": str(free_port())}
    # A developer running a few tests may build fewer catalogs (STARBOX_TEST_SAMPLE_CATALOGS=hipparcos);
    # `make test` builds them all.
    if os.environ.get("STARBOX_TEST_SAMPLE_CATALOGS"):
        env["STARBOX_SAMPLE_CATALOGS"] = os.environ["STARBOX_TEST_SAMPLE_CATALOGS"]
    env.update({f"STARBOX_{k.upper()}": str(v) for k, v in extra.items()})
    return settings_mod.load(env)


def settings_env(s: settings_mod.Settings) -> dict[str, str]:
    """Environment for a `starbox` subprocess that should use these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STARBOX_")}
    env.update(STARBOX_HOME=str(s.home), STARBOX_PG_PORT=str(s.pg_port),
               STARBOX_SAMPLE_CATALOGS=s.sample_catalogs, STARBOX_SERVICE_PORT=str(s.service_port),
               STARBOX_JUPYTER_PORT=str(s.jupyter_port), STARBOX_VOILA_PORT=str(s.voila_port))
    if s.database_url:
        env["STARBOX_DATABASE_URL"] = s.database_url
    return env


def until(predicate, timeout: float = 30) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (its last answer)."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return bool(predicate())


def run_cli(s: settings_mod.Settings, *args: str, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("starbox")
    return subprocess.run([str(exe), *args], env=settings_env(s), capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def _docker_engine() -> bool:
    docker = shutil.which("docker")
    return bool(docker) and subprocess.run([docker, "info"], capture_output=True).returncode == 0


@pytest.fixture(scope="session")
def first_prepare(tmp_path_factory):
    """A session-wide appliance from an empty home: a fresh cluster with every sample catalog.

    Where a Docker engine exists the same database could come from the project's image with
    testcontainers; this machine kind has none, so that path is reported as skipped in
    test_cluster.py::test_testcontainers_path.
    """
    home = tmp_path_factory.mktemp("starbox-home")
    s = make_settings(home)
    prepared = appliance.prepare(s, progress=False, log=lambda *_: None)
    yield s, prepared
    Cluster(s).stop()


@pytest.fixture(scope="session")
def starbox(first_prepare):
    """Settings of the session-wide appliance."""
    return first_prepare[0]


@pytest.fixture
def admin(starbox):
    with database.connect_admin(starbox) as conn:
        yield conn


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT.mkdir(exist_ok=True)
    return OUTPUT


TIERS = ("unit", "api", "system")  # registered in pyproject.toml


def pytest_collection_modifyitems(config, items):
    """Every test names exactly one tier, so `-m unit`, `-m api` and `-m system` split the suite."""
    wrong = []
    for item in items:
        tiers = sorted({m.name for m in item.iter_markers() if m.name in TIERS})
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid}: {', '.join(tiers) or 'no tier'}")
    if wrong:
        raise pytest.UsageError("each test needs one tier marker (unit, api or system):\n  " + "\n  ".join(wrong))


docker_engine = pytest.mark.skipif(not _docker_engine(), reason="no Docker engine on this machine")


# --- the live service ------------------------------------------------------------------------

class _Endpoint:
    """What the `service` and `api` fixtures share: httpx clients and fresh accounts."""

    settings: settings_mod.Settings
    url: str

    def _client_options(self) -> dict:
        return {}

    def client(self, token: str | None = None, **kw):
        import httpx

        headers = {"X-DL-AuthToken": token} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 60),
                            **self._client_options(), **kw)

    def add_user(self, name: str, password: str = "secret-pw") -> str:
        """Create an account (through the CLI code path) and return a fresh login token."""
        from starbox import accounts, storage_home

        with database.connect_admin(self.settings) as conn:
            if not conn.execute("SELECT 1 FROM starbox.accounts WHERE username=%s", (name,)).fetchone():
                accounts.add(conn, self.settings, name, password)
        storage_home.create(self.settings, name)
        with self.client() as c:
            r = c.get("/auth/login", params={"username": name}, headers={"X-DL-Password": password})
        assert r.status_code == 200, r.text
        return r.text


class Service(_Endpoint):
    """The service running in its own process against the session's cluster."""

    def __init__(self, settings: settings_mod.Settings, proc: subprocess.Popen):
        self.settings, self.proc = settings, proc
        self.url = settings.service_url


class App(_Endpoint):
    """The service's application in this process (the toolkit's in-process transport), against
    the session's database: the same routers, checks, status codes and messages, with no process
    to start. Clients only: anything else that needs a URL (pyvo, dl, a browser) needs `service`."""

    def __init__(self, settings: settings_mod.Settings):
        from starbox.inprocess import InProcessTransport

        self.settings, self.url = settings, settings.service_url
        self.transport = InProcessTransport(settings)

    def _client_options(self) -> dict:
        return {"transport": self.transport}

    def close(self) -> None:
        self.transport.shutdown()


def start_service(s: settings_mod.Settings, **extra_env: str) -> subprocess.Popen:
    """The service in its own process; extra_env adds settings, e.g. STARBOX_ROW_CAP='1000'."""
    import httpx

    log = (s.log_dir / "service-test.log").open("ab")
    proc = subprocess.Popen([sys.executable, "-m", "starbox.service"], env=settings_env(s) | extra_env,
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):
        try:
            if httpx.get(f"{s.service_url}/auth/", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        import time
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the service did not start; see {s.log_dir / 'service-test.log'}")


@pytest.fixture(scope="session")
def service(starbox):
    """The service on a free port, sharing the session's database and STARBOX_HOME."""
    import dataclasses

    s = dataclasses.replace(starbox, service_port=free_port())
    proc = start_service(s)
    yield Service(s, proc)
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="session")
def api(starbox):
    """The service's application in-process (see App), for tests that need only its HTTP answers."""
    app = App(starbox)
    yield app
    app.close()
