"""`dl.storeClient` for Starbox: the user's file storage (vos://, <user>://public/...).

Same functions, arguments and results as astro-datalab 2.24.0: a name without '://' gets
'vos://'; wildcards (* ? [) are expanded on the client; failures come back as the service's
message rather than an exception; get(..., to='') returns the content, put returns ['OK'].
Downloads and uploads go through the signed URLs that /get and /put hand out, streamed.

Deliberate differences from dl:

* get() to an existing local directory writes <dir>/<file name> (dl tries to open the
  directory); mode='fileobj' returns a BytesIO; mode='text' on undecodable bytes returns bytes.
* put() checks the upload's answer and reports a local name that matches no file
  (dl returns 'OK' for it); the token sent with the PUT is the resolved one.
* chunked_upload() checks each chunk's answer and stages an empty file too.
* isAlive() without an argument checks the URL in use, not a URL fixed at import time.
"""

from __future__ import annotations

import fnmatch
import glob
import io
import json
import os
import sys
import tempfile
import time

import httpx

from starbox.client import http as _http

URI_RESERVED = ":;?/@&=+$,"
CHUNK_SIZE = 4 * 1024 * 1024
PROTECTED = ("vos://", "vos://tmp", "vos://public")
LONG = httpx.Timeout(900.0, connect=10.0)  # load, cp, mv, rmdir: the service may work a while
_state = {"profile": "default"}


class storeClientError(Exception):
    """dl's error: ``str(e)`` and ``e.message`` are the message.

    Parameters
    ----------
    message : str
        The message.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


# --- plumbing ------------------------------------------------------------------------------------


def _uri(name) -> str:
    name = "" if name is None else str(name)
    return (name if "://" in name else "vos://" + name).replace("///", "//")


def _get(path: str, token=None, base=None, timeout=None, **params) -> httpx.Response:
    try:
        return _http.request(
            "GET", f"{base or get_svc_url()}{path}", tok=_http.token(token), params=params, timeout=timeout
        )
    except _http.Unreachable as exc:
        raise storeClientError(exc.message) from None


def hasmeta(s) -> bool:
    """Does a name hold wildcard characters (``*``, ``?``, ``[``)?

    Parameters
    ----------
    s : str
        A storage name.

    Returns
    -------
    bool
    """
    s = str(s)
    return s.find("*") >= 0 or s.find("[") >= 0 or s.find("?") > 0


def isdir(name, token=None) -> bool:
    """Is `name` a directory (container) in storage?

    Parameters
    ----------
    name : str
        A storage name (``vos://`` is added when it has no scheme).
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    bool
    """
    r = _get("/isdir", token, name=_uri(name))
    return _http.as_bool(r)


def is_vosDir(svc_url, token, path):
    """dl's helper: is `path` a directory?

    Parameters
    ----------
    svc_url : str
        Ignored: the storage URL in use is asked.
    token : str
        The token (None: this process's login).
    path : str
        A storage name.

    Returns
    -------
    bool or str
        True/False, or the service's message when it refuses.
    """
    r = _get("/isdir", token, base=(svc_url or get_svc_url()).rstrip("/"), name=path)
    return _http.as_bool(r) if r.status_code == 200 else r.text


def expandFileList(svc_url, token, pattern, format="csv", full=False):
    """The names a wildcard pattern (or a folder ending in '/') matches, sorted.

    Parameters
    ----------
    svc_url : str
        Ignored: the storage URL in use is asked.
    token : str
        The token (None: this process's login).
    pattern : str
        A storage name with wildcards, or a folder ending in '/'.
    format : str, optional
        As in dl.
    full : bool, optional
        Full ``vos://`` names rather than bare file names.

    Returns
    -------
    list of str
    """
    if not hasmeta(pattern) and not str(pattern).endswith("/"):
        return [pattern]
    scheme, sep, rest = str(pattern).partition("://")
    prefix = scheme + sep if sep else "vos://"
    rest = rest if sep else str(pattern)
    folder, name = os.path.split(rest)
    match = name if name else "*"
    folder = folder.strip("/")
    info = stat(prefix + folder, token=token)
    if info.get("type") == "link" and "://" in info.get("target", ""):
        prefix, _, folder = info["target"].partition("://")
        prefix += "://"
        info = stat(prefix + folder, token=token)
    if info.get("type") != "container":
        raise storeClientError("A Container does not exist with the requested URI")
    r = _get("/ls", token, base=(svc_url or get_svc_url()).rstrip("/"), name=prefix + folder, format="csv")
    if r.status_code != 200:
        raise storeClientError(r.text)
    names = [f for f in r.text.split(",") if f and (fnmatch.fnmatch(f, match) or f == match)]
    where = prefix + (folder + "/" if folder else "")
    return sorted((where + f).replace("///", "//") if full else f for f in names)


def _expand(token, uri):
    try:
        return expandFileList(None, token, uri, "csv", full=True), None
    except storeClientError as exc:
        return None, exc.message


# --- reading -------------------------------------------------------------------------------------


@_http.accepts_token_first()
def ls(name="vos://", token=None, format="csv", verbose=False):
    """List a storage folder or file.

    Parameters
    ----------
    name : str, optional
        What to list (wildcards allowed); ``vos://`` is the user's root.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    format : str, optional
        ``'csv'`` (names joined by ','), ``'long'`` (ls -l style) or ``'short'`` (columns).
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    str
    """
    uri = _uri(name)
    r = _get("/ls", token, name=uri, format=format, verbose=str(bool(verbose)))
    if r.status_code != 200:
        return f'Error {r.status_code}: "{uri}" {r.text.strip() or r.reason_phrase}'
    return r.text


@_http.accepts_token_first()
def stat(path, token=None, verbose=True):
    """A node's properties.

    Parameters
    ----------
    path : str
        A storage name.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    dict
        name, owner, perms, size, type ...; ``{}`` when there is no such node.
    """
    r = _get("/stat", token, name=_uri(path), verbose=str(bool(verbose)))
    return json.loads(r.text) if r.status_code == 200 else {}


@_http.accepts_token_first()
def access(path, mode=None, token=None, verbose=True):
    """May you read, write or both?

    Parameters
    ----------
    path : str
        A storage name.
    mode : str, optional
        ``'r'``, ``'w'`` or ``'rw'``.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    bool
    """
    r = _get("/access", token, name=_uri(path), mode=mode, verbose=str(bool(verbose)))
    return _http.as_bool(r)


@_http.accepts_token_first()
def get(token=None, fr="", to="", mode="text", verbose=True, debug=False, timeout=30):
    """Download a file, or return its content.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    fr : str
        The storage name (wildcards allowed when `to` is a directory).
    to : str, optional
        ``''``: return the content; a local file or directory: download there.
    mode : str, optional
        With ``to=''``: ``'text'``, ``'binary'`` or ``'fileobj'`` (a BytesIO).
    verbose : bool, optional
        Print progress, as dl does.
    debug : bool, optional
        Accepted for dl's sake.
    timeout : float, optional
        Seconds to wait for the service.

    Returns
    -------
    str, bytes, io.BytesIO or list of str
        The content, or a list with ``'OK'`` or a message per file downloaded.

    Raises
    ------
    storeClientError
        When several files are asked for without a local directory.
    """
    nm = _uri(fr)
    if hasmeta(fr) and (not to or not os.path.isdir(to)):
        raise storeClientError("Multi-file requests require a download location that is a directory")
    if not to:
        return _content(token, nm, mode)
    files, message = _expand(token, nm)
    if files is None:
        return message
    if not files:
        return "A Node does not exist with the requested URI."
    results = []
    for num, remote in enumerate(files, 1):
        local = to
        if hasmeta(fr) or os.path.isdir(to):
            local = os.path.join(to, os.path.basename(remote))
        results.append(_download(token, remote, local, f"({num}/{len(files)})" if verbose else None, timeout))
    return results


def _signed(token, nm) -> tuple[str | None, str]:
    r = _get("/get", token, name=nm)
    return (r.text.strip(), "") if r.status_code == 200 else (None, r.text)


def _content(token, nm, mode):
    url, message = _signed(token, nm)
    if url is None:
        return message
    try:
        r = _http.client().get(url)  # the signed URL needs no headers
    except httpx.TransportError as exc:
        raise storeClientError(f"Error: download of {nm} failed: {exc}") from None
    if r.status_code != 200:
        return r.text
    if mode == "binary":
        return r.content
    if mode == "fileobj":
        return io.BytesIO(r.content)
    try:
        return r.content.decode()
    except UnicodeDecodeError:
        return r.content


def _download(token, remote, local, label, timeout) -> str:
    url, message = _signed(token, remote)
    if url is None:
        return "Error: " + message
    shown = remote.split("://", 1)[-1]

    def progress(done):
        sys.stdout.write(f"\r{label} [{done:>10,d} B] {shown}")
        sys.stdout.flush()

    for attempt in range(max(1, int(timeout))):
        try:
            with _http.client().stream("GET", url, timeout=httpx.Timeout(60.0, connect=10.0)) as r:
                if r.status_code != 200:
                    r.read()
                    return r.text
                _http.write_stream(r, local, progress=progress if label else None)
            break
        except (httpx.TransportError, _http.Unreachable) as exc:
            if attempt + 1 >= max(1, int(timeout)):
                return f"Error: download of {remote} failed: {exc}"
            time.sleep(1)
    if label:
        print()
    return "OK"


# --- writing -------------------------------------------------------------------------------------


@_http.accepts_token_first()
def put(fr="", to="vos://", token=None, verbose=True, debug=False):
    """Upload local file(s) to storage.

    Parameters
    ----------
    fr : str
        A local file, a pattern with wildcards, or a directory.
    to : str, optional
        The storage name or folder.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    verbose : bool, optional
        Print progress, as dl does.
    debug : bool, optional
        Accepted for dl's sake.

    Returns
    -------
    list of str
        ``'OK'`` or the message, one entry per file.
    """
    fr = os.fspath(fr)
    if os.path.isdir(fr):
        if fr.endswith("/"):
            mkdir(to if "://" in to else to.rstrip("/"), token=token)
        files = glob.glob(os.path.join(fr, "*"))
    else:
        files = glob.glob(fr)
    if not files:
        return [f"Error: Local file '{fr}' does not exist"]
    if len(files) > 1:
        kind = stat(to, token=token).get("type")
        if kind is None:
            return ["Error: target directory not exist"]
        if kind != "container":
            return ["Error: target must be a container"]
    results = []
    for num, local in enumerate(sorted(files), 1):
        results.append(_upload(token, local, to, f"({num} / {len(files)})" if verbose else None))
    return results


def _upload(token, local, to, label) -> str:
    name = os.path.basename(local)
    if any(c in name for c in URI_RESERVED):
        return "Error: URI reserved char in source filename: " + local
    if not os.path.isfile(local):
        return f"Error: Local file '{local}' is not a file"
    nm = _uri(to)
    if to.endswith("/"):
        nm += name
    elif isdir(nm, token=token):
        nm += "/" + name
    nm = nm.replace("///", "//")
    if any(c in nm[nm.rfind("/") + 1 :] for c in URI_RESERVED):
        return "Error: URI reserved char in target filename: " + nm
    r = _get("/put", token, name=nm)
    if r.status_code != 200:
        return r.text
    if label:
        sys.stdout.write(f"{label} {local} -> ")
    try:
        with open(local, "rb") as fh:
            up = _http.client().put(
                r.text.strip(),
                content=fh,
                timeout=httpx.Timeout(None, connect=10.0),
                headers={"Content-Type": "application/octet-stream", "X-DL-AuthToken": _http.token(token)},
            )
    except httpx.TransportError as exc:
        return f"Error: upload of {local} failed: {exc}"
    if label:
        print(nm)
    return "OK" if up.status_code == 200 else up.text


def _two_names(fr, to, verb):
    """dl's rule: both names remote, or both plain (then both vos://)."""
    fr, to = str(fr or ""), str(to or "")
    if ("://" in fr) != ("://" in to):
        hint = "put" if "://" not in fr else "get"
        return (
            None,
            None,
            (
                f"Cannot {verb} from local to remote; use put() instead."
                if hint == "put"
                else f"Cannot {verb} from remote to local; use get() instead."
            ),
        )
    return _uri(fr), _uri(to), None


def _transfer(op, verb, token, fr, to):
    src, dest, message = _two_names(fr, to, verb)
    if message:
        return message
    if not hasmeta(fr):
        r = _get(f"/{op}", token, timeout=LONG, **{"from": src, "to": dest})
        return "OK" if "COMPLETED" in r.text else r.text
    files, message = _expand(token, src)
    if files is None:
        return message
    out = []
    for f in files:
        target = (dest + "/" + os.path.basename(f)).replace("///", "//")
        r = _get(f"/{op}", token, timeout=LONG, **{"from": f, "to": target})
        out.append("OK" if "COMPLETED" in r.text else r.text)
    return out


@_http.accepts_token_first()
def cp(token=None, fr="", to="", verbose=False):
    """Copy within storage.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    fr : str
        The source name (wildcards allowed).
    to : str
        The destination.
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    str
        ``'OK'`` or the service's message (a list of them with wildcards).
    """
    return _transfer("cp", "copy", token, fr, to)


@_http.accepts_token_first()
def mv(token=None, fr="", to="", verbose=False):
    """Move or rename within storage.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    fr : str
        The source name (wildcards allowed).
    to : str
        The destination.
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    str
        ``'OK'`` or the service's message (a list of them with wildcards).
    """
    return _transfer("mv", "move", token, fr, to)


@_http.accepts_token_first()
def ln(fr="", target="", token=None, verbose=False):
    """Make `fr` a link to the existing `target` (inside the user's own tree).

    Parameters
    ----------
    fr : str
        The link to create.
    target : str
        The existing node it points to.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    str
        ``'OK'`` or the service's message (a list of them with wildcards).
    """
    r = _get("/ln", token, **{"from": _uri(fr), "to": _uri(target)})
    return "OK" if r.status_code == 201 else r.text


@_http.accepts_token_first()
def mkdir(name="", token=None):
    """Create a folder.

    Parameters
    ----------
    name : str
        The new folder's storage name.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    nm = _uri(name)
    r = _get("/mkdir", token, dir=nm[:-1] if nm.endswith("/") and not nm.endswith("://") else nm)
    return "OK" if r.status_code == 201 else r.text


@_http.accepts_token_first()
def rm(name="", token=None, verbose=False):
    """Remove a file (wildcards allowed).

    Parameters
    ----------
    name : str
        The storage name; ``vos://``, ``vos://tmp`` and ``vos://public`` cannot be removed.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    str
        ``'OK'`` or the service's message (a list of them with wildcards).
    """
    nm = _uri(name)
    if nm in PROTECTED:
        return "Error: operation not permitted"
    if hasmeta(nm):
        files, message = _expand(token, nm)
        if files is None:
            return message
        if not files:
            return "A Node does not exist with the requested URI."
        return [rm(f, token=token, verbose=verbose) for f in files]
    r = _get("/isdir", token, name=nm)
    if r.status_code != 200:
        return r.text
    if _http.as_bool(r):
        return f"{name} is a directory."
    r = _get("/rm", token, file=nm)
    return "OK" if r.status_code == 204 else r.text


@_http.accepts_token_first()
def rmdir(name="", token=None, verbose=False):
    """Remove a directory and everything in it.

    Parameters
    ----------
    name : str
        The folder's storage name.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    verbose : bool, optional
        Print progress, as dl does.

    Returns
    -------
    str
        ``'OK'`` or the service's message (a list of them with wildcards).
    """
    nm = _uri(name)
    if nm.endswith("/") and not nm.endswith("://"):
        nm = nm[:-1]
    if nm in PROTECTED:
        return "Error: operation not permitted"
    r = _get("/isdir", token, name=nm)
    if r.status_code != 200:
        return r.text
    if not _http.as_bool(r):
        return f"{name} is not a directory."
    r = _get("/rmdir", token, timeout=LONG, dir=nm)
    return "OK" if r.status_code == 204 else r.text


@_http.accepts_token_first()
def tag(name="", tag="", token=None):
    """Annotate a node (an empty tag clears them).

    Parameters
    ----------
    name : str
        The storage name.
    tag : str
        The annotation.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    r = _get("/tag", token, name=_uri(name), tag=tag)
    return "OK" if r.status_code == 200 else r.text


@_http.accepts_token_first()
def load(name="", endpoint="", token=None, is_vospace=False):
    """Have the service fetch a URL (or a storage name) into `name`. Also called ``pull``.

    Parameters
    ----------
    name : str
        The storage name to write.
    endpoint : str
        An http(s) URL (internal addresses are refused unless the site allows them).
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    is_vospace : bool, optional
        `endpoint` is a storage name, not a URL.

    Returns
    -------
    str
        The service's answer.
    """
    r = _get("/load", token, timeout=LONG, name=_uri(name), endpoint=endpoint, is_vospace=str(bool(is_vospace)))
    return r.text


pull = load


@_http.accepts_token_first()
def saveAs(data, name, token=None):
    """Write ``str(data)`` to storage as `name`.

    Parameters
    ----------
    data : object
        What to write (as its ``str``).
    name : str
        The storage name.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    list of str
        ``['OK']`` or the message.
    """
    fd, tmp = tempfile.mkstemp(prefix="tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(str(data))
        return [_upload(token, tmp, _uri(name), None)]
    finally:
        os.unlink(tmp)


def chunked_upload(token, local_file, remote_file):
    """Stage a local file for MyDB import: POST ``{storage}/xfer`` in 4 MiB chunks, as dl does.

    Parameters
    ----------
    token : str
        The token (None: this process's login).
    local_file : str
        The local file.
    remote_file : str
        The staged name that ``/query/import`` and ``/query/ingest`` then read.

    Returns
    -------
    str
        ``'OK'``.

    Raises
    ------
    storeClientError
        With the service's message when a chunk is refused.
    """
    tok = _http.token(token)
    target = f"{get_svc_url()}/xfer"
    with open(local_file, "rb") as fh:
        first = True
        while True:
            data = fh.read(CHUNK_SIZE)
            if not data and not first:
                break
            try:
                r = _http.request(
                    "POST",
                    target,
                    tok=tok,
                    content=data,
                    timeout=httpx.Timeout(300.0, connect=10.0),
                    extra_headers={
                        "Content-Type": "application/octet-stream",
                        "X-DL-FileName": remote_file,
                        "X-DL-InitXfer": str(first),
                    },
                )
            except _http.Unreachable as exc:
                raise storeClientError("Upload error: " + exc.message) from None
            if r.status_code != 200:
                raise storeClientError(r.text)
            first = False
            if len(data) < CHUNK_SIZE:
                break
    return "OK"


# --- service -------------------------------------------------------------------------------------


def services(name=None, svc_type="vos", format=None, profile="default"):
    """The file services (asked of the Query Manager, as in dl).

    Parameters
    ----------
    name : str, optional
        One service by name.
    svc_type : str, optional
        The service type.
    format : str, optional
        As in dl.
    profile : str, optional
        The service profile.

    Returns
    -------
    str or dict
    """
    r = _get(
        "/services",
        None,
        base=_http.url("query"),
        profile=profile or None,
        name=name or None,
        type=svc_type or None,
        format=format or None,
    )
    return json.loads(r.text) if "{" in r.text else r.text


@_http.accepts_token_first()
def list_profiles(token=None, profile=None, format="text"):
    """The storage service profiles.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    profile : str, optional
        One profile, returned as a dict.
    format : str, optional
        ``'text'`` or ``'json'``.

    Returns
    -------
    str or dict
    """
    r = _get("/profiles", token, profile=profile if profile not in (None, "", "None") else None, format=format)
    return json.loads(r.text) if "{" in r.text else r.text


def isAlive(svc_url=None):
    """Does the Storage Manager answer?

    Parameters
    ----------
    svc_url : str, optional
        The URL to check; by default the one in use.

    Returns
    -------
    bool
    """
    return _http.is_alive((svc_url or get_svc_url()).strip().rstrip("/"), timeout=5)


def set_svc_url(svc_url=None):
    """Point the Storage Manager calls at another URL.

    Parameters
    ----------
    svc_url : str
        The base URL, e.g. ``http://127.0.0.1:8400/storage``; empty leaves it unchanged.
    """
    if svc_url:
        _http.set_url("storage", svc_url)


def get_svc_url():
    """The Storage Manager URL in use.

    Returns
    -------
    str
    """
    return _http.url("storage")


def set_profile(profile="default"):
    """Set the service profile.

    Parameters
    ----------
    profile : str, optional
        The profile name.
    """
    _state["profile"] = profile


def get_profile():
    """The service profile in use.

    Returns
    -------
    str
    """
    return _state["profile"]
