"""Class-day pools: how many pre-heated kernels each Voilà app holds, and when.

Voilà keeps `default_pool_size` pre-heated kernels per app (voila.json: one). A page that finds
the pool empty waits for a kernel to start and run the app, and with a class opening the same app
at once, thirty kernels starting together on two cores take a minute or more. So the teacher plans
the class's pool before the bell: `starbox apps prewarm APP --students 30 [--at 10:00]`.

A plan is a line in ``<state>/app-pools.json``, written here (the one owner of that file) and read
every few seconds by Voilà's pool keeper (starbox.jupyter.voila). From `FILL_LEAD` before the
class starts until it ends, the app's pool holds as many kernels as students are still to come:
the students less the pages the pool has served since the plan began. So a class of thirty holds
thirty kernels at most, never thirty pages plus thirty spares. Then the pool is back to the default.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import secrets
import time
from pathlib import Path

from starbox.errors import StarboxError
from starbox.jupyter.paths import apps_dir, state_dir
from starbox.settings import Settings

PLAN_FILE = "app-pools.json"
FILL_LEAD = 15 * 60.0  # s before a class starts that its pool begins to fill
MAX_STUDENTS = 200
MAX_HOURS = 12.0


@dataclasses.dataclass(frozen=True)
class Plan:
    app: str  # the notebook's name without .ipynb
    students: int
    start: float  # when the class starts (epoch s): its pool is full by then
    until: float  # when it ends: the pool is back to the default
    made: float  # when the plan was written: what the keeper counts served pages from

    def active(self, now: float) -> bool:
        return self.start - FILL_LEAD <= now < self.until


def plan_path(settings: Settings) -> Path:
    return state_dir(settings) / PLAN_FILE


def read(settings: Settings) -> dict[str, Plan]:
    return read_file(plan_path(settings))


def read_file(path: Path) -> dict[str, Plan]:
    """The plans, by app; a missing or damaged file is no plans (the keeper never stops on it)."""
    try:
        raw = json.loads(path.read_text())
        return {p["app"]: Plan(**p) for p in raw.get("plans", []) if isinstance(p, dict)}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _write(settings: Settings, plans: dict[str, Plan]) -> None:
    path = plan_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{PLAN_FILE}.{secrets.token_hex(4)}")
    tmp.write_text(json.dumps({"plans": [dataclasses.asdict(p) for p in plans.values()]}, indent=1))
    os.replace(tmp, path)  # the keeper never reads half a file


def app_names(settings: Settings) -> list[str]:
    return sorted(p.stem for p in apps_dir(settings).glob("*.ipynb"))


def plan(
    settings: Settings,
    app: str,
    students: int,
    start: float | None = None,
    hours: float = 2.0,
    now: float | None = None,
) -> Plan | None:
    """Plan `students` pre-heated kernels of `app` for a class starting at `start` (default: now)
    and lasting `hours`; 0 students cancels the app's plan (None). Ended plans are dropped."""
    app = app.removesuffix(".ipynb")
    names = app_names(settings)
    if app not in names:
        raise StarboxError(f"Error: there is no app {app!r}; the apps are: {', '.join(names)}")
    if not 0 <= students <= MAX_STUDENTS:
        raise StarboxError(f"Error: plan between 1 and {MAX_STUDENTS} students (0 cancels the plan)")
    if not 0 < hours <= MAX_HOURS:
        raise StarboxError(f"Error: a class lasts more than 0 and at most {MAX_HOURS:.0f} hours")
    now = time.time() if now is None else now
    start = now if start is None else start
    if start + hours * 3600 <= now:
        raise StarboxError("Error: that class would be over already; give a start time still to come")
    plans = {name: p for name, p in read(settings).items() if p.until > now and name in names}
    made = None
    if students:
        made = Plan(app, students, start, start + hours * 3600, now)
        plans[app] = made
    else:
        plans.pop(app, None)
    _write(settings, plans)
    return made


def parse_start(text: str | None, now: float | None = None) -> float | None:
    """When a class starts: "HH:MM" (today, this machine's time) or an ISO date and time."""
    if not text:
        return None
    now = time.time() if now is None else now
    try:
        if len(text) <= 5 and ":" in text:
            hour, minute = (int(x) for x in text.split(":"))
            day = datetime.datetime.fromtimestamp(now)
            return day.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise StarboxError(f"Error: {text!r} is not a time: give HH:MM (today) or YYYY-MM-DDTHH:MM") from None


def target(plan: Plan | None, served: int, default: int, now: float) -> int:
    """How many pre-heated kernels an app's pool should hold now."""
    if plan is None or not plan.active(now):
        return default
    return max(default, plan.students - served)
