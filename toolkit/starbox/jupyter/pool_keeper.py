"""Voilà's pre-heated pools kept to the teachers' plans (starbox.jupyter.pools), gently.

Voilà refills a pool as soon as a page takes a kernel, and starts every missing kernel at once:
a pool of thirty would start thirty kernels together, and thirty pages of a class would leave
thirty spares behind them. The keeper takes over filling:

* each pool holds what its plan asks now (`pools.target`): the default size, or during a class
  the students still to come;
* at most `MAX_STARTING` kernels start at a time (each imports the app's libraries and runs the
  app: on a small machine more at once only makes every one of them later), at a lower CPU
  priority, so the pages in use keep the processor (a page that takes a kernel gives it the
  normal priority back, where the system allows that);
* no kernel starts while the machine's free memory is under `memory_floor()`: a full box
  serves the next page with a kernel of its own, later, instead of swapping;
* a pool larger than its plan (the class is over) shuts its spare warm kernels down.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import psutil
from tornado.ioloop import PeriodicCallback

from starbox.jupyter import pools

POOL_NICE = 10  # CPU priority of kernels that fill a pool (0 normal, 19 lowest)
MAX_STARTING = 2  # pool kernels starting at once
CHECK_EVERY = 1.0  # s between looks at the plans and the pools


def _lower_priority() -> None:  # runs in the kernel process, before it starts Python
    os.nice(POOL_NICE)


def memory_floor() -> int:
    """Bytes of available memory below which no pool kernel starts."""
    return max(1 << 30, psutil.virtual_memory().total // 10)


def _warm(task) -> bool:
    """A pool entry whose kernel started and finished running the app."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return False
    render = task.result().get("task")
    return render is not None and render.done()


class PoolKeeper:
    def __init__(self, km, default_size: int, plan_file: str, log: logging.Logger):
        self.km, self.default, self.log = km, max(int(default_size), 0), log
        self.plan_file = Path(plan_file) if plan_file else None
        self._plans: dict[str, pools.Plan] = {}
        self._plans_stamp: tuple[int, int] | None = None
        self._served: dict[str, tuple[float, int]] = {}  # app: (plan made, pages served since)
        self._fill_args: dict[str, dict] = {}
        self._short_of_memory = 0.0
        self._fill, self._take = km.fill_if_needed, km.get_rendered_notebook
        km.fill_if_needed, km.get_rendered_notebook = self.fill_if_needed, self.get_rendered_notebook
        self._callback = PeriodicCallback(self.tick, CHECK_EVERY * 1000)

    def start(self) -> None:
        self._callback.start()

    def stop(self) -> None:
        self._callback.stop()

    # --- the plans ---------------------------------------------------------------------------

    def _read_plans(self) -> None:
        if self.plan_file is None:
            return
        try:
            st = self.plan_file.stat()
            stamp = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp != self._plans_stamp:
            self._plans_stamp, self._plans = stamp, pools.read_file(self.plan_file) if stamp else {}

    def _plan(self, notebook: str) -> pools.Plan | None:
        return self._plans.get(notebook.removesuffix(".ipynb"))

    def served(self, notebook: str) -> int:
        plan = self._plan(notebook)
        made, count = self._served.get(notebook, (None, 0))
        return count if plan is not None and made == plan.made else 0

    def target(self, notebook: str, now: float | None = None) -> int:
        return pools.target(self._plan(notebook), self.served(notebook), self.default, now or time.time())

    # --- Voilà's kernel manager, wrapped -----------------------------------------------------

    def fill_if_needed(self, delay=None, notebook_name=None, **kwargs):
        """Voilà asks for a refill after each page: the keeper decides how much, now or later."""
        if notebook_name is not None:
            self._fill_args[notebook_name] = {"delay": delay, **kwargs}
            self.top_up(notebook_name)

    async def get_rendered_notebook(self, notebook_name, *args, **kwargs):
        plan = self._plan(notebook_name)
        if plan is not None and plan.active(time.time()):
            made, count = self._served.get(notebook_name, (plan.made, 0))
            self._served[notebook_name] = (plan.made, (count if made == plan.made else 0) + 1)
        render_task, rendered_cache, kernel_id = await self._take(notebook_name, *args, **kwargs)
        try:
            os.setpriority(os.PRIO_PROCESS, self.km.get_kernel(kernel_id).provisioner.pid, 0)
        except (AttributeError, KeyError, TypeError, OSError):
            pass  # not allowed: it keeps the pool's priority
        return render_task, rendered_cache, kernel_id

    # --- filling and trimming ----------------------------------------------------------------

    def _starting(self) -> int:
        return sum(1 for pool in self.km._pools.values() for task in pool if not _warm(task))

    def top_up(self, notebook: str) -> None:
        pool = self.km._pools.setdefault(notebook, [])
        missing = self.target(notebook) - len(pool)
        room = MAX_STARTING - self._starting()
        if missing <= 0 or room <= 0:
            return
        if psutil.virtual_memory().available < memory_floor():
            if time.monotonic() - self._short_of_memory > 60:
                self._short_of_memory = time.monotonic()
                self.log.warning("memory is short: no pre-heated kernel starts for %s until it frees up", notebook)
            return
        args = dict(self._fill_args.get(notebook, {}))
        delay = args.pop("delay", None)
        args.setdefault("preexec_fn", _lower_priority)
        config = self.km.kernel_pools_config
        own = dict(config.get(notebook, config.get("default", {})))
        config[notebook] = {**own, "pool_size": len(pool) + min(missing, room)}
        self._fill(delay=delay, notebook_name=notebook, **args)

    async def _trim(self, notebook: str) -> None:
        pool = self.km._pools.get(notebook, [])
        spare = [t for t in pool if _warm(t)][: max(len(pool) - self.target(notebook), 0)]
        for task in spare:
            kernel_id = task.result()["kernel_id"]
            self.log.info("the plan for %s is over: a spare pre-heated kernel shuts down", notebook)
            try:
                await self.km.shutdown_kernel(kernel_id)  # also takes it out of the pool
            except Exception as exc:  # noqa: BLE001 - gone already; the pool forgets it either way
                self.log.warning("spare kernel %s: %s", kernel_id, exc)
                if task in pool:
                    pool.remove(task)

    async def tick(self) -> None:
        self._read_plans()
        for notebook in list(self.km._pools):
            self.top_up(notebook)
            if len(self.km._pools.get(notebook, [])) > self.target(notebook):
                await self._trim(notebook)

    def status(self) -> dict:
        """Per app: pool entries, warm ones, the target now, pages served under its plan, the plan."""
        self._read_plans()
        out = {}
        for notebook, pool in self.km._pools.items():
            plan = self._plan(notebook)
            out[notebook] = {
                "size": len(pool),
                "warm": sum(1 for t in pool if _warm(t)),
                "target": self.target(notebook),
                "served": self.served(notebook),
                "plan": None if plan is None else {"students": plan.students, "start": plan.start, "until": plan.until},
            }
        return out
