"""Voilà as the appliance runs it (`StarboxVoila`): Host checks, cached front ends, pages that
can shut their kernel down, pools kept to the teacher's plan (pool_keeper.py) at a lower CPU
priority, /starbox/pools."""

from __future__ import annotations

import hashlib
import inspect
import ipaddress
import json
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
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler, WebsocketHandler

from starbox.jupyter.pool_keeper import PoolKeeper

_HASHED_NAME = re.compile(r"[.-][0-9a-f]{16,}\.[a-z0-9]+$")
_YEAR = 365 * 24 * 3600
# The files whose content names a build of the pages' front end: Voilà's (voila.js lists its
# chunks) and Starbox's light page (appliance/voila-page).
_FRONT_END_FILES = ("voila.js", "starbox-page.js", "starbox-page.css")


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


def v1_message_type(message: bytes) -> str | None:
    """The msg_type of a kernel message in the v1 websocket framing (little-endian count and
    offsets, then channel, header, ...), or None when it is not one."""
    count = int.from_bytes(message[:8], "little")
    if not 3 <= count <= 64 or len(message) < 8 * (count + 1):
        return None
    offsets = [int.from_bytes(message[8 * (i + 1) : 8 * (i + 2)], "little") for i in range(count)]
    try:
        return json.loads(message[offsets[1] : offsets[2]].decode("utf-8")).get("msg_type")
    except (ValueError, AttributeError):
        return None


class KernelChannelsHandler(VoilaKernelWebsocketHandler):
    """Voilà's kernel websocket, without its hang.

    To drop `execute_input` messages, Voilà reads every binary message as the v1 framing. A
    client on the older framing (a big-endian count: any websocket client that asks for no
    subprotocol) gets its first widget buffer read as a count of about 10^17 offsets, and Voilà's
    one thread builds that list forever: every app stops for everyone. This reads the count
    only where it can be one.
    """

    def write_message(self, message, binary=False):
        if isinstance(message, bytes):
            if v1_message_type(message) == "execute_input":
                return None
            return WebsocketHandler.write_message(self, message, binary)
        return super().write_message(message, binary)


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
    """How warm Voilà's pre-heated kernels are, and what the plan asks of each pool (for
    `wait_warm`, `starbox apps pools`, the tests and the bench)."""

    def initialize(self, app):
        self.app = app

    def get(self):
        km = self.app.kernel_manager
        keeper = getattr(self.app, "pool_keeper", None)
        pools = keeper.status() if keeper is not None else {}
        self.set_header("Cache-Control", "no-store")
        self.finish(
            {
                "preheat": bool(self.app.voila_configuration.preheat_kernel),
                "pools": pools,
                "kernels": len(km.list_kernel_ids()),
            }
        )


class StarboxVoila(Voila):
    """Voilà with /starbox/pools, pages that can shut their kernel down, static files the
    browser keeps, pool kernels that yield the CPU to pages, and its kernels shut down when
    it stops."""

    # Host names answered besides loopback addresses (comma-separated; voila_hostnames).
    local_hostnames = Unicode("localhost", config=True)
    # The teachers' plans for the pools (starbox.jupyter.pools); empty: the default size only.
    pool_plan = Unicode("", config=True)
    pool_keeper: PoolKeeper | None = None

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
            self.pool_keeper = PoolKeeper(km, self.voila_configuration.default_pool_size, self.pool_plan, self.log)
            self.pool_keeper.start()  # on the loop Voilà is about to run
        return settings

    def init_handlers(self):
        handlers = []
        for h in super().init_handlers():
            if h[1] is TornadoVoilaHandler:
                h = (h[0], PageHandler, *h[2:])
            elif h[1] is FileFindHandler and h[0].endswith("/voila/labextensions/(.*)"):
                h = (h[0], ExtensionsHandler, *h[2:])
            elif h[1] is VoilaKernelWebsocketHandler:
                h = (h[0], KernelChannelsHandler, *h[2:])
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
        if self.pool_keeper is not None:
            self.pool_keeper.stop()
        km = getattr(self, "kernel_manager", None)
        if km is not None and getattr(self, "ioloop", None) is not None:
            try:
                self.ioloop.run_sync(lambda: km.shutdown_all(now=True), timeout=10)
            except Exception as exc:  # stopping anyway; the kernels exit with their parent
                self.log.warning("kernels not shut down cleanly: %s", exc)
        super().stop()
