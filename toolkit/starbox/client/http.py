"""The toolkit's shared layer: where each service lives, which token a call sends, and one
pooled httpx client with the Data Lab headers and plain-language connection errors.

Deliberate differences from `dl`:
* URLs come from `starbox.settings` (STARBOX_URL, default the local appliance), not from
  /tmp/*_SVC_URL files. A service whose URL was never set follows a sibling that was set:
  `qc.set_svc_url('http://host:8400/query')` also moves storage, auth and res to that host.
* The token order is: an explicit token argument, the token of `ac.login()` in this process,
  the login saved in ~/.datalab by another kernel, the STARBOX_TOKEN setting, then anonymous.
* In the in-process mode (the `toolkit_mode` setting, or `starbox.inprocess.start()`), the one
  client's transport hands every request to the service's application in this process
  (starbox.client.inprocess); everything above this layer is the same in both modes.
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
from pathlib import Path

import httpx

from starbox import __version__
from starbox import settings as settings_mod
from starbox.client import inprocess
from starbox.client.mode import MODES, mode, set_mode  # noqa: F401 - the toolkit's one place to ask

# The same values as starbox.accounts (a test checks it); that module needs the database and
# hashes a password when imported, which a notebook kernel should not pay for.
ANON_TOKEN = "anonymous.0.0.anon_access"
TOKEN_RE = re.compile(r"^([^/\s]+)\.(\d+)\.(\d+)\.((?:\$1\$\S{22,})|(?:\S+_access))$")
SERVICES = ("query", "storage", "auth", "res")  # sibling preference when one is unset
STATE_FILE = "starbox_login.json"

_urls: dict[str, str] = {}
_session: dict[str, str | None] = {"user": None, "token": None}
_revoked: set[str] = set()
_client: httpx.Client | None = None
_client_key: tuple | None = None  # (pid, mode, transport) the client was made for


class Unreachable(Exception):
    """The service could not be reached or did not answer in time."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- service URLs ------------------------------------------------------------------------------


def set_url(service: str, url: str | None) -> None:
    """Pin one service's URL (a trailing '/' is dropped); an empty value unpins it."""
    url = (url or "").strip().rstrip("/")
    if url:
        _urls[service] = url
    else:
        _urls.pop(service, None)


def url(service: str) -> str:
    """The URL of `service`: pinned, else beside a pinned sibling, else from the settings."""
    if service in _urls:
        return _urls[service]
    for other in SERVICES:
        pinned = _urls.get(other, "")
        if pinned.endswith("/" + other):
            return pinned[: -len(other)] + service
    return f"{settings_mod.get().service_url}/{service}"


# --- tokens ------------------------------------------------------------------------------------


def is_token(value) -> bool:
    return isinstance(value, str) and TOKEN_RE.match(value.strip()) is not None


def token_user(token: str) -> str:
    match = TOKEN_RE.match((token or "").strip())
    return match.group(1) if match else "anonymous"


def datalab_home() -> Path:
    return Path.home() / ".datalab"


def read_token_file(user: str) -> str | None:
    try:
        with open(datalab_home() / f"id_token.{user}") as fh:
            token = fh.read(128).strip()
    except OSError:
        return None
    return token if is_token(token) else None


def saved_user() -> str | None:
    """The user another kernel logged in as (the state file), if any."""
    try:
        user = json.loads((datalab_home() / STATE_FILE).read_text()).get("user")
    except (OSError, ValueError, AttributeError):
        return None
    return user if isinstance(user, str) and user else None


def remember(user: str, token: str) -> None:
    """Keep a login: in memory, in ~/.datalab/id_token.<user> (as dl) and in the state file."""
    _session.update(user=user, token=token)
    _revoked.discard(token)
    home = datalab_home()
    try:
        home.mkdir(parents=True, exist_ok=True)
        _write_private(home / f"id_token.{user}", token)
        _write_private(home / STATE_FILE, json.dumps({"user": user}))
    except OSError:
        pass  # a read-only home still has the in-memory login


def forget(token: str) -> None:
    """Drop a login that was just logged out, wherever it was kept."""
    user = token_user(token)
    _revoked.add(token)
    if _session["token"] == token:
        _session.update(user=None, token=None)
    home = datalab_home()
    if read_token_file(user) == token:
        (home / f"id_token.{user}").unlink(missing_ok=True)
    if saved_user() == user and read_token_file(user) is None:
        (home / STATE_FILE).unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def token(explicit: str | None = None) -> str:
    """The token a call sends (dl's def_token, plus the in-process login and STARBOX_TOKEN).

    An explicit token is used as is; a bare user name reads ~/.datalab/id_token.<name>;
    anything else becomes the anonymous token, as in dl.
    """
    if explicit:
        explicit = explicit.strip()
        if is_token(explicit):
            return explicit
        if "." not in explicit:
            return read_token_file(explicit) or ANON_TOKEN
        return ANON_TOKEN
    if _session["token"]:
        return _session["token"]
    user = saved_user()
    saved = read_token_file(user) if user else None
    if saved and saved not in _revoked:
        return saved
    configured = (settings_mod.get().token or "").strip()
    if is_token(configured) and configured not in _revoked:
        return configured
    return ANON_TOKEN


def accepts_token_first(positional: tuple[str, ...] | None = None):
    """dl's multimethod calling forms: a token-shaped first positional argument is the token;
    the other positional arguments fill the remaining parameters in order (or `positional`)."""

    def decorate(func):
        sig = inspect.signature(func)
        names = positional or tuple(
            n
            for n, p in sig.parameters.items()
            if n != "token" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)
        )

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            args = list(args)
            if args and is_token(args[0]):
                if kwargs.get("token"):
                    raise TypeError(f"{func.__name__}() got the token twice")
                kwargs["token"] = args.pop(0)
            if len(args) > len(names):
                raise TypeError(
                    f"{func.__name__}() takes at most {len(names)} positional arguments "
                    f"besides the token ({len(args)} given)"
                )
            for name, value in zip(names, args):
                if name in kwargs:
                    raise TypeError(f"{func.__name__}() got multiple values for argument {name!r}")
                kwargs[name] = value
            return func(**kwargs)

        return wrapper

    return decorate


# --- HTTP --------------------------------------------------------------------------------------


def client() -> httpx.Client:
    """One pooled client per process and mode (a forked kernel makes its own)."""
    global _client, _client_key
    current, transport = mode(), None
    if current == "inprocess":
        transport = inprocess.transport()  # a new one after inprocess.start() with other settings
    key = (os.getpid(), current, id(transport))
    if _client is None or _client_key != key:
        if _client is not None and _client_key[0] == key[0]:
            _client.close()  # the in-process transport outlives it (see starbox.client.inprocess)
        _client = httpx.Client(
            timeout=httpx.Timeout(120.0, connect=10.0),
            transport=transport,
            headers={"X-DL-ClientVersion": f"starbox-{__version__}"},
        )
        _client_key = key
    return _client


def headers(tok: str | None) -> dict[str, str]:
    return {"X-DL-AuthToken": tok, "X-DL-User": token_user(tok)} if tok else {}


def _params(params: dict | None) -> dict | None:
    return None if params is None else {k: v for k, v in params.items() if v is not None}


def _unreachable(target: str, exc: Exception) -> Unreachable:
    if _client_key and _client_key[1] == "inprocess":
        return Unreachable(
            str(exc) if str(exc).startswith("Error:") else f"Error: the in-process Starbox service failed ({exc})"
        )
    if isinstance(exc, httpx.TimeoutException):
        return Unreachable(f"Error: the Starbox service at {target} did not answer in time")
    if isinstance(exc, httpx.ConnectError):
        return Unreachable(
            f"Error: the Starbox service at {target} is not reachable ({exc}); is it running? (starbox up)"
        )
    return Unreachable(f"Error: the connection to the Starbox service at {target} broke ({type(exc).__name__}: {exc})")


def _stale(exc: Exception) -> bool:
    """A kept-alive connection the service had just closed: the request never reached it."""
    return isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)


def request(
    method: str,
    target: str,
    *,
    tok: str | None = None,
    params: dict | None = None,
    extra_headers: dict | None = None,
    timeout: float | httpx.Timeout | None = None,
    content=None,
) -> httpx.Response:
    """One call, body read; connection failures become Unreachable with a readable message."""
    hdrs = headers(tok)
    hdrs.update(extra_headers or {})
    kw = {} if timeout is None else {"timeout": timeout}
    for attempt in (1, 2):
        try:
            return client().request(method, target, params=_params(params), headers=hdrs, content=content, **kw)
        except httpx.TransportError as exc:
            if attempt == 1 and _stale(exc) and isinstance(content, (bytes, type(None))):
                continue
            raise _unreachable(target, exc) from None


def stream(
    method: str,
    target: str,
    *,
    tok: str | None = None,
    params: dict | None = None,
    extra_headers: dict | None = None,
    timeout: float | httpx.Timeout | None = None,
):
    """A streaming response (a context manager); call `.read()` or iterate its bytes.
    Transport errors, also while the body is read, become Unreachable."""
    hdrs = headers(tok)
    hdrs.update(extra_headers or {})
    kw = {} if timeout is None else {"timeout": timeout}
    return _Streaming(lambda: client().stream(method, target, params=_params(params), headers=hdrs, **kw), target)


class _Streaming:
    """httpx's stream context, retried once on a stale connection, errors made readable."""

    def __init__(self, open_ctx, target: str):
        self._open, self._target, self._ctx = open_ctx, target, None

    def __enter__(self) -> httpx.Response:
        for attempt in (1, 2):
            self._ctx = self._open()
            try:
                return self._ctx.__enter__()
            except httpx.TransportError as exc:
                if attempt == 1 and _stale(exc):
                    continue
                raise _unreachable(self._target, exc) from None

    def __exit__(self, exc_type, exc, tb):
        self._ctx.__exit__(exc_type, exc, tb)
        if isinstance(exc, httpx.TransportError):
            raise _unreachable(self._target, exc) from None
        return False


def write_stream(response: httpx.Response, path: str | os.PathLike, chunk_size: int = 1 << 20, progress=None) -> int:
    """Stream a response body into `path` (via a temporary name, so a failure leaves no half file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    size = 0
    try:
        with open(tmp, "wb") as fh:
            for chunk in response.iter_bytes(chunk_size):
                fh.write(chunk)
                size += len(chunk)
                if progress:
                    progress(size)
        os.replace(tmp, path)
    except httpx.TransportError as exc:
        raise _unreachable(str(response.url), exc) from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return size


def is_alive(target: str, timeout: float = 2) -> bool:
    """The root of a service answers 200 and 'Hello World...' (what dl's isAlive checks)."""
    try:
        r = client().get(target, timeout=timeout)
    except httpx.HTTPError:
        return False
    return r.status_code == 200 and r.text.lower()[:11] == "hello world"


def as_bool(response: httpx.Response) -> bool:
    return response.status_code == 200 and response.text.strip().lower() == "true"
