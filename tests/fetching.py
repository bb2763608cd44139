"""A second service on the session's cluster whose fetch_allow_hosts lets the server fetch from
127.0.0.1: for tests that load URLs from a local HTTP server, which starbox.outbound refuses by
default (loopback). Import the fixture into a test module: `from fetching import fetching_service`."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import Service, free_port, start_service

ALLOW = "127.0.0.1"


@pytest.fixture(scope="module")
def fetching_service(service):
    s = dataclasses.replace(service.settings, service_port=free_port(), fetch_allow_hosts=ALLOW)
    proc = start_service(s, STARBOX_FETCH_ALLOW_HOSTS=ALLOW)
    try:
        yield Service(s, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
