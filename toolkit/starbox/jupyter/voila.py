"""Voilà as the appliance runs it (`StarboxVoila`): Host checks, cached front ends, pages that
can shut their kernel down, pool kernels at a lower CPU priority, /starbox/pools."""

from __future__ import annotations

import hashlib
import inspect
import ipaddress
import os
import re
from pathlib import Path

from jupyter_server.base.handlers import FileFindHandler
from jupyter_server.utils import url_path_join
from tornado.log import app_log
from tornado.web import HTTPError, RequestHandler
from traitlets import Unicode
from voila import __version__ as voila_version
from voila.app import Voila
from voila.static_file_handler import MultiStaticFileHandler, TemplateStaticFileHandler
from voila.tornado.handler import TornadoVoilaHandler

_HASHED_NAME = re.compile(r"[.-][0-9a-f]{16,}\.[a-z0-9]+$")
_YEAR = 365 * 24 * 3600
# The files whose content names a build of the pages' front end: Voilà's (voila.js lists its
# chunks) and Starbox's light page (appliance/voila-page).
_FRONT_END_FILES = ("voila.js", "starbox-page.js", "starbox-page.css")
POOL_NICE = 10  # CPU priority of kernels that fill a pool (0 normal, 19 lowest)


def _lower_priority() -> None:  # runs in the kernel process, before it starts Python
    os.nice(POOL_NICE)


def host_allowed(host_name: str, local_hostnames: list[str]) -> bool:
    """jupyter_server's check_host rule: loopback addresses, or a name in local_hostnames."""
    host = host_name.strip("[]").lower()
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in local_hostnames


class SafeTemplateStaticFileHandler(TemplateStaticFileHandler):
    """/voila/templates/<template>/static/<path>: anything else (`..%2f..`, no `static`) is
    404; Voilà's own handler fails on it with 500 (an unpacking error or an assert)."""

    def parse_url_path(self, path):
        parts = path.split("/")
        if len(parts) < 3 or parts[1] != "static" or any(p in ("", ".", "..") or "\\" in p for p in parts):
            raise HTTPError(404)
        return super().parse_url_path(path)


def host_checked(handler_class, app):
    """The handler class refusing a Host that is not local (403), before anything else."""

    class HostChecked(handler_class):
        def prepare(self, *args, **kwargs):
            if not host_allowed(self.request.host_name, app.allowed_hostnames):
                app_log.warning("Blocked request with non-local 'Host' %s", self.request.host)
                # A plain answer (Voilà's error pages come out empty); tornado runs no
                # handler method once prepare finished the request.
                self.clear()
                self.set_status(403)
                self.set_header("Content-Type", "text/plain; charset=utf-8")
                self.finish(
                    f"Blocked request with non-local 'Host' {self.request.host}: open Voila "
                    f"as http://localhost:<port>/ or http://127.0.0.1:<port>/\n"
                )
                return None
            return super().prepare(*args, **kwargs)

    HostChecked.__name__ = HostChecked.__qualname__ = f"HostChecked{handler_class.__name__}"
    return HostChecked


class ExtensionsHandler(FileFindHandler):
    """Voilà's /voila/labextensions, with the hashed files cached by the browser.

    Voilà serves every extension file with `no-cache`, so each page load asked again for the
    ~15 widget files (a round trip each, all before the widgets can load). A file whose name
    or `?v=` carries its content hash never changes under that URL; the rest (style.js,
    package.json) still revalidate.
    """

    def set_headers(self):
        super().set_headers()
        if _HASHED_NAME.search(self.request.path) or "v" in self.request.arguments:
            self.set_header("Cache-Control", f"public, max-age={_YEAR}, immutable")


class VersionedStaticHandler(MultiStaticFileHandler):
    """The pages' front ends (Starbox's starbox-page.js; voila.js and its ~150 chunks) under
    /starbox/voila-static/<build>/.

    Voilà's /voila/static sends no cache headers, so whether a second page reuses its 3 MB of
    JavaScript depended on the browser's guess from the files' age (a fresh install: a
    round trip per chunk). The chunk names carry no hash, so the build (Voilà's version and
    a hash of the _FRONT_END_FILES) goes in the path and the files are cached
    for good: an upgrade changes the path.
    """

    build = ""

    async def get(self, build, path, include_body=True):
        if build != self.build:
            raise HTTPError(404)
        await super().get(path, include_body)

    async def head(self, build, path):
        await self.get(build, path, include_body=False)

    def get_cache_time(self, path, modified, mime_type):
        return _YEAR


class PageHandler(TornadoVoilaHandler):
    """Voilà's app page, which also sets the `_xsrf` cookie.

    When a page closes, Voilà's JavaScript asks the server to shut its kernel down and sends
    the `_xsrf` cookie with that request; Voilà 0.5 never sets the cookie, so the request is
    refused (403) and every visit leaves a kernel running until the culler finds it
    (voila-dashboards/voila#1458). Reading `xsrf_token` sets the cookie.
    """

    async def prepare(self):
        result = super().prepare()
        if inspect.isawaitable(result):
            await result
        self.xsrf_token  # noqa: B018 - the property sets the cookie


class PoolHandler(RequestHandler):
    """How warm Voilà's pre-heated kernels are (for `wait_warm`, the tests and the bench)."""

    def initialize(self, app):
        self.app = app

    def get(self):
        km = self.app.kernel_manager
        conf = self.app.voila_configuration
        pools = {}
        for name, tasks in getattr(km, "_pools", {}).items():
            warm = 0
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is None:
                    render = task.result().get("task")
                    warm += bool(render is not None and render.done())
            target = km.kernel_pools_config.get(name, km.kernel_pools_config.get("default", {})).get(
                "pool_size", conf.default_pool_size
            )
            pools[name] = {"size": len(tasks), "warm": warm, "target": target}
        self.set_header("Cache-Control", "no-store")
        self.finish({"preheat": bool(conf.preheat_kernel), "pools": pools, "kernels": len(km.list_kernel_ids())})


class StarboxVoila(Voila):
    """Voilà with /starbox/pools, pages that can shut their kernel down, static files the
    browser keeps, pool kernels that yield the CPU to pages, and its kernels shut down when
    it stops."""

    # Host names answered besides loopback addresses (comma-separated; voila_hostnames).
    local_hostnames = Unicode("localhost", config=True)

    @property
    def allowed_hostnames(self) -> list[str]:
        return [n.strip().lower() for n in self.local_hostnames.split(",") if n.strip()]

    def initialize(self, argv=None):
        super().initialize(argv)
        conf = self.voila_configuration
        digest = hashlib.sha256()
        for name in _FRONT_END_FILES:
            found = next((Path(p) / name for p in self.static_paths if (Path(p) / name).is_file()), None)
            digest.update(found.read_bytes() if found else b"-")
        VersionedStaticHandler.build = f"{voila_version}-{digest.hexdigest()[:12]}"
        user_hook = conf.page_config_hook

        def page_config_hook(page_config, **kwargs):
            if user_hook is not None:
                page_config = user_hook(page_config, **kwargs)
            # voila.js and the chunks it loads (its public path) come from the versioned URL.
            page_config["fullStaticUrl"] = url_path_join(
                kwargs["base_url"], "starbox/voila-static", VersionedStaticHandler.build
            )
            # No LaTeX typesetter: otherwise every page loads and starts MathJax 3 (~1 MB of
            # JavaScript, to typeset an empty element) while its widgets load. With no MathJax
            # URL, Voilà's front end picks its MathJax 2 plugin, which then declines to start
            # (an error in the browser's console), so nothing is loaded. The apps have no
            # formulas (tests/test_voila_apps.py checks).
            page_config["fullMathjaxUrl"] = page_config["mathjaxConfig"] = ""
            return page_config

        conf.page_config_hook = page_config_hook

    def init_settings(self):
        settings = super().init_settings()
        km = self.kernel_manager
        if hasattr(km, "fill_if_needed") and hasattr(km, "get_rendered_notebook"):
            self._yield_cpu_while_filling(km)
        return settings

    def _yield_cpu_while_filling(self, km):
        """A kernel that refills a pool starts (imports, runs the app, draws) while the page
        that took the last one loads: on a small machine they share the CPU and the page
        waits. So pool kernels start at a lower priority (nice), and get the normal one
        back when a page takes them, where the system allows that (root, or CAP_SYS_NICE)."""
        fill, take = km.fill_if_needed, km.get_rendered_notebook

        def fill_if_needed(*args, **kwargs):
            kwargs.setdefault("preexec_fn", _lower_priority)
            return fill(*args, **kwargs)

        async def get_rendered_notebook(*args, **kwargs):
            render_task, rendered_cache, kernel_id = await take(*args, **kwargs)
            try:
                pid = km.get_kernel(kernel_id).provisioner.pid
                os.setpriority(os.PRIO_PROCESS, pid, 0)
            except (AttributeError, KeyError, TypeError, OSError):
                pass  # not allowed: it keeps the pool's priority
            return render_task, rendered_cache, kernel_id

        km.fill_if_needed, km.get_rendered_notebook = fill_if_needed, get_rendered_notebook

    def init_handlers(self):
        handlers = []
        for h in super().init_handlers():
            if h[1] is TornadoVoilaHandler:
                h = (h[0], PageHandler, *h[2:])
            elif h[1] is FileFindHandler and h[0].endswith("/voila/labextensions/(.*)"):
                h = (h[0], ExtensionsHandler, *h[2:])
            elif h[1] is TemplateStaticFileHandler:
                h = (h[0], SafeTemplateStaticFileHandler, *h[2:])
            handlers.append(h)
        handlers = [
            (url_path_join(self.server_url, r"/starbox/pools"), PoolHandler, {"app": self}),
            (
                url_path_join(self.server_url, r"/starbox/voila-static/([^/]+)/(.*)"),
                VersionedStaticHandler,
                {"paths": self.static_paths, "default_filename": "index.html"},
            ),
            *handlers,
        ]
        # Every handler checks Host, as JupyterLab does (Voilà itself allows remote access).
        return [(h[0], host_checked(h[1], self), *h[2:]) for h in handlers]

    def stop(self):
        km = getattr(self, "kernel_manager", None)
        if km is not None and getattr(self, "ioloop", None) is not None:
            try:
                self.ioloop.run_sync(lambda: km.shutdown_all(now=True), timeout=10)
            except Exception as exc:  # stopping anyway; the kernels exit with their parent
                self.log.warning("kernels not shut down cleanly: %s", exc)
        super().stop()
