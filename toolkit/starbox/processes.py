"""The appliance's long-running child processes (the service; later JupyterLab and Voila):
started with their logs under $STARBOX_HOME/logs, checked for readiness, stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from starbox.cluster.control import port_in_use
from starbox.errors import StarboxError
from starbox.settings import Settings


@dataclass
class Child:
    name: str
    argv: list[str]
    port: int
    ready_url: str
    log: Path
    cwd: Path | None = None
    proc: subprocess.Popen | None = field(default=None, repr=False)

    def start(self, settings: Settings, timeout: float = 60) -> None:
        if port_in_use(settings.service_host, self.port):
            raise StarboxError(
                f"port {self.port} for the {self.name} is taken by another program: stop it or change the port setting"
            )
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, STARBOX_HOME=str(settings.home))
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.cwd
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise StarboxError(f"the {self.name} stopped at start-up; see {self.log}")
            try:
                if httpx.get(self.ready_url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise StarboxError(f"the {self.name} did not answer within {timeout:.0f} s; see {self.log}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def service(settings: Settings) -> Child:
    return Child(
        "service",
        [sys.executable, "-m", "starbox.service", *(["--proxy-socket"] if settings.shared else [])],
        settings.service_port,
        f"http://{settings.service_host}:{settings.service_port}/auth/",
        settings.log_dir / "service.log",
    )
