"""Class day: the teacher's plan for an app's pool, and a class of five in a real browser.

The plan's rules are checked on their own (starbox.jupyter.pools); then a real Voilà (as `starbox
up` starts it) fills a planned pool two kernels at a time, five students in five Chromium contexts
open the HR diagram builder within three seconds and each moves a slider five times (bench/classroom.py
drives them, as in `make bench` with thirty), and the pool goes back to one kernel once the plan
is cancelled.
"""

from __future__ import annotations

import dataclasses
import datetime
import time
from pathlib import Path

import pytest

from conftest import free_port, run_cli, until
from starbox import jupyter
from starbox.errors import StarboxError
from starbox.jupyter import pools

CHROMIUM = "/usr/bin/chromium"


# --- the plan -----------------------------------------------------------------------------------


@pytest.fixture
def plan_settings(tmp_path):
    from conftest import make_settings

    return make_settings(tmp_path)


@pytest.mark.unit
def test_plan_rules(plan_settings):
    s, now = plan_settings, 1_800_000_000.0
    with pytest.raises(StarboxError, match="no app 'nope'.*hr_diagram"):
        pools.plan(s, "nope", 30, now=now)
    with pytest.raises(StarboxError, match="between 1 and 200"):
        pools.plan(s, "hr_diagram", 201, now=now)
    with pytest.raises(StarboxError, match="at most 12 hours"):
        pools.plan(s, "hr_diagram", 30, hours=13, now=now)
    with pytest.raises(StarboxError, match="over already"):
        pools.plan(s, "hr_diagram", 30, start=now - 3 * 3600, hours=2, now=now)
    assert pools.read(s) == {}  # nothing was written by the refusals

    p = pools.plan(s, "hr_diagram.ipynb", 30, start=now + 3600, hours=1, now=now)
    assert p == pools.read(s)["hr_diagram"] and p.until == now + 7200
    # before the fill lead the default; then the students still to come; after the class the default
    assert pools.target(p, 0, 1, now) == 1
    assert pools.target(p, 0, 1, now + 3600 - pools.FILL_LEAD) == 30
    assert pools.target(p, 12, 1, now + 3700) == 18
    assert pools.target(p, 40, 1, now + 3700) == 1
    assert pools.target(p, 0, 1, now + 7200) == 1
    # a second app's plan keeps the first; 0 students cancels one; an ended plan is dropped
    pools.plan(s, "sky_explorer", 5, now=now)
    assert set(pools.read(s)) == {"hr_diagram", "sky_explorer"}
    assert pools.plan(s, "sky_explorer", 0, now=now) is None and set(pools.read(s)) == {"hr_diagram"}
    pools.plan(s, "light_curve", 3, now=now + 8000)
    assert set(pools.read(s)) == {"light_curve"}
    # a damaged file is no plans, never an error in Voilà
    pools.plan_path(s).write_text("{not json")
    assert pools.read(s) == {}


@pytest.mark.unit
def test_parse_start():
    now = datetime.datetime(2026, 12, 3, 9, 0).timestamp()
    assert pools.parse_start(None) is None
    assert pools.parse_start("10:30", now) == datetime.datetime(2026, 12, 3, 10, 30).timestamp()
    assert pools.parse_start("2026-12-04T08:15", now) == datetime.datetime(2026, 12, 4, 8, 15).timestamp()
    with pytest.raises(StarboxError, match="not a time"):
        pools.parse_start("25:99", now)
    with pytest.raises(StarboxError, match="not a time"):
        pools.parse_start("tomorrow", now)


# --- a class of five ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def voila(service):
    settings = dataclasses.replace(service.settings, voila_port=free_port())
    jupyter.ensure_local_user(settings)
    pools.plan_path(settings).unlink(missing_ok=True)
    child = jupyter.voila_child(settings, name="voila-classroom")
    child.start(settings, timeout=120)
    try:
        jupyter.wait_warm(settings, timeout=180)
        yield settings
    finally:
        pools.plan_path(settings).unlink(missing_ok=True)
        child.stop()


def _hr(settings) -> dict:
    return jupyter.pool_status(settings)["pools"]["hr_diagram.ipynb"]


@pytest.mark.system
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_class_of_five(voila):
    from bench import classroom

    s = voila
    r = run_cli(s, "apps", "prewarm", "hr_diagram", "--students", "5")
    assert r.returncode == 0 and "5 pre-heated kernels" in r.stdout, r.stdout + r.stderr
    most_starting, deadline = 0, time.monotonic() + 180
    while time.monotonic() < deadline:
        hr = _hr(s)
        most_starting = max(most_starting, hr["size"] - hr["warm"])
        if hr["warm"] >= 5:
            break
        time.sleep(0.2)
    assert hr["warm"] == 5 and hr["target"] == 5, hr
    assert most_starting <= 2  # the keeper starts two at a time, never the whole class at once
    listing = run_cli(s, "apps", "pools")
    assert "hr_diagram" in listing.stdout and "5 students" in listing.stdout, listing.stdout

    run = classroom.run_class(s, 5, spread=3, changes=5, timeout_s=120)
    errors = [e for st in run.students for e in st.errors]
    assert errors == []
    assert all(st.tti is not None for st in run.students)
    assert [len(st.changes) for st in run.students] == [5] * 5  # every slider change arrived
    hr = _hr(s)
    assert hr["served"] == 5 and hr["target"] == 1, hr  # served students are not refilled

    # closed pages' kernels shut down; cancelling the plan leaves the default pool of one
    run_cli(s, "apps", "prewarm", "hr_diagram", "--students", "0")
    assert until(lambda: _hr(s)["size"] == 1 and _hr(s)["warm"] == 1, timeout=60), _hr(s)
    assert until(lambda: jupyter.pool_status(s)["kernels"] == 4, timeout=60), jupyter.pool_status(s)


@pytest.mark.system
def test_prewarm_refusals(voila):
    r = run_cli(voila, "apps", "prewarm", "no_such_app", "--students", "5")
    assert r.returncode == 1 and "there is no app 'no_such_app'" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    r = run_cli(voila, "apps", "prewarm", "hr_diagram", "--students", "5", "--at", "noon")
    assert r.returncode == 1 and "is not a time" in r.stdout + r.stderr


@pytest.mark.unit
def test_v1_header_reader_refuses_other_framings():
    import json
    import struct

    from starbox.jupyter.voila import v1_message_type

    parts = [b"iopub", json.dumps({"msg_type": "execute_input"}).encode(), b"{}", b"{}", b"{}"]
    offsets, at = [], 8 * (len(parts) + 1)
    for part in parts:
        offsets.append(at)
        at += len(part)
    v1 = len(parts).to_bytes(8, "little") + b"".join(o.to_bytes(8, "little") for o in offsets) + b"".join(parts)
    assert v1_message_type(v1) == "execute_input"
    # the older framing (a big-endian count and offsets): Voilà read its count as ~10^17 offsets
    legacy = struct.pack("!III", 2, 12, 40) + b'{"header": {"msg_type": "comm_msg"}}' + b"\x89PNG"
    started = time.perf_counter()
    assert v1_message_type(legacy) is None and v1_message_type(b"") is None
    assert time.perf_counter() - started < 0.1


@pytest.mark.system
def test_a_client_on_the_older_websocket_framing_stalls_nobody(voila):
    """An anonymous client that asks for no websocket subprotocol gets widget buffers in the
    older framing. Voilà 0.5 hung on the first one, for every app and every student."""
    from bench.wire_student import WireStudent

    w = WireStudent(jupyter.app_url(voila, "hr_diagram.ipynb"), timeout=60)
    try:
        assert w.open() > 0
        slider, picture = w.model("FloatLogSliderModel", "closer than"), w.model("ImageModel")
        assert w.change(slider, 25.0, picture) > 0  # the new picture came, as a binary message
        assert w.change(slider, 250.0, picture) > 0
        started = time.perf_counter()
        assert jupyter.pool_status(voila, timeout=10)["preheat"] is True
        assert time.perf_counter() - started < 5
    finally:
        w.close()
