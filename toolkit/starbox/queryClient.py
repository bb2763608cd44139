"""`dl.queryClient` for Starbox: SQL/ADQL queries, async jobs, metadata and MyDB tables.

Same functions, arguments, defaults and results as astro-datalab 2.24.0, including dl's
calling forms (`qc.query('select ...')`, `qc.query(token, 'select ...')`, a token as the first
positional argument of any call) and keyword aliases (async, format, timeout, wait, poll,
verbose). A refused query raises queryClientError carrying the service's message.

Additions and deliberate differences from dl:

* fmt='arrow' and fmt='parquet' ask the service for Arrow / Parquet and return a pandas
  DataFrame with the database's column types (no CSV parsing on either side).
* A local `out` file is streamed to disk (also with `file://`, which dl silently ignores), and
  an async query with wait=True writes its result there too; fmt='fits' without `out` returns
  bytes (dl fails decoding them).
* The mydb_* helpers return 'OK' only when the service said so; dl's byte/str mix-up makes
  most of them return 'OK' whatever happened. Failures come back as dl's code intended:
  mydb_create / mydb_insert raise, mydb_import / mydb_drop / the others return the message.
* An async wait also stops on ABORTED; jobs() raises queryClientError (dl: dlResError).
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import tempfile
import threading
import time

import httpx

from starbox import storeClient
from starbox.client import http as _http
from starbox.client.chunks import ChunkReader
from starbox.client.convert import convert, from_arrow, from_parquet

DEF_TIMEOUT_REQUEST = 300
CONVERTED = ("pandas", "array", "structarray", "table", "csv-noheader")  # fetched as CSV
TERMINAL = ("COMPLETED", "ERROR", "ABORTED")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_+.-]*)://")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")

_state = {"profile": "default", "timeout": DEF_TIMEOUT_REQUEST, "async_wait": False}


class queryClientError(Exception):
    """dl's error: ``str(e)`` and ``e.message`` are the service's message.

    Parameters
    ----------
    message : str
        The service's message.
    """

    def __init__(self, message):
        super().__init__(message)
        self.message = message

    def __str__(self):
        return self.message


# --- plumbing ------------------------------------------------------------------------------------


def _call(
    method: str, path: str, *, token=None, params=None, headers=None, timeout=60, base=None, auth=True, content=None
) -> httpx.Response:
    tok = _http.token(token) if auth else None
    try:
        return _http.request(
            method,
            f"{base or get_svc_url()}{path}",
            tok=tok,
            params=params,
            extra_headers=headers,
            timeout=timeout,
            content=content,
        )
    except _http.Unreachable as exc:
        raise queryClientError(exc.message) from None


def _profile_param(profile) -> str:
    return profile if profile not in (None, "", "default") else _state["profile"]


def _query_forms(func):
    """dl's query() forms: query(sql), query(token, sql), query(token|user, sql=...)."""

    @functools.wraps(func)
    def wrapper(*args, **kw):
        args = [*args]  # `list` is dl's deprecated mydb_list below
        if args and (_http.is_token(args[0]) or (len(args) == 1 and (kw.get("sql") or kw.get("adql")))):
            if kw.get("token"):
                raise TypeError("query() got the token twice")
            kw["token"] = args.pop(0)
        if len(args) > 1:
            raise TypeError("query() takes the token and the query as its only positional arguments")
        if args:
            if kw.get("sql"):
                raise TypeError("query() got the SQL twice")
            kw["sql"] = args[0]
        return func(**kw)

    return wrapper


def _server_side(out) -> bool:
    """vos://, mydb://, <user>://: the service saves the result; anything else is a local file."""
    match = _SCHEME.match(str(out or ""))
    return bool(match) and match.group(1).lower() != "file"


def _local_path(out) -> str:
    out = os.fspath(out)
    return out[7:] if out.startswith("file://") else out


def _deliver(r: httpx.Response, fmt: str, local_out=None):
    """The result of a successful (streaming) response, as `fmt` asks."""
    if local_out:
        _http.write_stream(r, _local_path(local_out))
        return "OK"
    if fmt == "arrow":
        return from_arrow(io.BufferedReader(ChunkReader(r.iter_bytes(1 << 20)), buffer_size=1 << 20))
    body = r.read()
    if fmt == "parquet":
        return from_parquet(body)
    if fmt == "fits":
        return body
    text = body.decode()
    if fmt == "csv-noheader":
        return text.strip().partition("\n")[2]
    if fmt in CONVERTED:
        return convert(text, fmt)
    return text


def _fetch(path: str, params: dict, token, fmt: str, local_out=None, timeout=None, headers=None):
    """GET a result and deliver it; any non-200 raises queryClientError with the body."""
    try:
        with _http.stream(
            "GET",
            f"{get_svc_url()}{path}",
            tok=_http.token(token),
            params=params,
            extra_headers=headers,
            timeout=timeout,
        ) as r:
            if r.status_code != 200:
                r.read()
                raise queryClientError(r.text)
            return _deliver(r, fmt, local_out)
    except _http.Unreachable as exc:
        raise queryClientError(exc.message) from None


def _read_timeout(seconds: int) -> httpx.Timeout:
    """The service stops a query at `seconds`; give its message time to arrive."""
    return httpx.Timeout(None if seconds <= 0 else seconds + 30.0, connect=10.0)


# --- queries -------------------------------------------------------------------------------------


@_query_forms
def query(token=None, adql=None, sql=None, fmt="csv", out=None, async_=False, drop=False, profile="default", **kw):
    """Run an SQL or ADQL query.

    Also callable as dl allows: ``query(sql)``, ``query(token, sql)``, ``query(token, sql=...)``.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    adql : str, optional
        An ADQL query (translated to PostgreSQL by the service).
    sql : str, optional
        A PostgreSQL query; ``mydb://t`` names the table ``t`` of the user's MyDB.
    fmt : str, optional
        csv (the default), csv-noheader, ascii, tsv, votable, fits, pandas, table, array,
        structarray, and the fast arrow and parquet (both return a pandas DataFrame).
    out : str, optional
        Where the result goes instead of being returned: a local file (streamed to disk),
        ``vos://path`` or ``mydb://table``.
    async_ : bool, optional
        Run as an async job (also spelled ``async=`` in ``**kw``).
    drop : bool, optional
        With ``out='mydb://t'``: replace an existing table.
    profile : str, optional
        The service profile (one exists: ``'default'``).
    **kw
        dl's aliases and extras: ``async``, ``format``, ``timeout`` (s, sent as
        X-DL-TimeoutRequest), ``wait`` (an async query waits for its result), ``poll`` (s
        between status checks while waiting), ``verbose``.

    Returns
    -------
    str, bytes, pandas.DataFrame, astropy.table.Table or numpy.ndarray
        The result in `fmt`; ``'OK'`` with `out`; the job id for an async query without
        ``wait=True``.

    Raises
    ------
    queryClientError
        With the service's message when the query is refused or fails.
    """
    async_ = kw.get("async", async_)
    fmt = kw.get("format", fmt) or "csv"
    timeout = int(kw.get("timeout", _state["timeout"]))
    wait = kw["wait"] if async_ and isinstance(kw.get("wait"), bool) else _state["async_wait"]
    poll = float(kw.get("poll", 1)) if async_ else 1
    verbose = bool(kw.get("verbose", False)) and async_
    text = adql or sql
    if not text:
        raise queryClientError("No query specified")
    local_out = out if out and not _server_side(out) else None
    params = {
        "adql" if adql else "sql": text,
        "ofmt": "csv" if fmt in CONVERTED else fmt,
        "out": out if _server_side(out) else None,
        "async": str(bool(async_)),
        "drop": str(bool(drop)),
        "profile": _profile_param(profile),
    }
    headers = {"Content-Type": "text/ascii", "X-DL-TimeoutRequest": str(timeout)}
    if not async_:
        if params["out"]:
            r = _call("GET", "/query", token=token, params=params, headers=headers, timeout=_read_timeout(timeout))
            if r.status_code != 200:
                raise queryClientError(r.text)
            return "OK"
        return _fetch("/query", params, token, fmt, local_out, _read_timeout(timeout), headers)
    r = _call("GET", "/query", token=token, params=params, headers=headers)
    if r.status_code != 200:
        raise queryClientError(r.text)
    jobid = r.text.strip()
    if not wait:
        return jobid
    return _wait_for(token, jobid, fmt, params["out"], local_out, timeout, poll, verbose, profile)


def _wait_for(token, jobid, fmt, server_out, local_out, timeout, poll, verbose, profile):
    started = time.monotonic()
    phase = _job_call("/status", token, jobid, profile)
    while phase not in TERMINAL:
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            _job_call("/abort", token, jobid, profile)
            if verbose:
                print(f"Timeout ({timeout} sec) exceeded")
            raise queryClientError("Query timeout exceeded")
        if verbose:
            print(f"Status = {phase}; elapsed time: {elapsed:.0f}, timeout in {timeout - elapsed:.0f}")
        time.sleep(poll)
        phase = _job_call("/status", token, jobid, profile)
    if phase == "ERROR":
        if verbose:
            print("Retrieving error")
        return _job_call("/error", token, jobid, profile)
    if phase != "COMPLETED":
        return phase
    if server_out:
        return "OK"
    if verbose:
        print("Retrieving results")
    return _fetch(
        "/results", {"jobid": jobid, "delete": "True", "profile": _profile_param(profile)}, token, fmt, local_out
    )


def _job_call(path, token, jobid, profile) -> str:
    r = _call("GET", path, token=token, params={"jobid": jobid, "profile": _profile_param(profile)})
    if r.status_code != 200:
        raise queryClientError(r.text)
    return r.text.strip()


# --- async jobs ----------------------------------------------------------------------------------


@_http.accepts_token_first()
def status(token=None, jobId=None, profile="default"):
    """The phase of an async job.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    jobId : str
        The job id that an async query returned.
    profile : str, optional
        The service profile (one exists: ``'default'``).

    Returns
    -------
    str
        QUEUED, EXECUTING, COMPLETED, ERROR or ABORTED (or the service's message).
    """
    return _call("GET", "/status", token=token, params={"jobid": jobId, "profile": _profile_param(profile)}).text


@_http.accepts_token_first()
def results(token=None, jobId=None, fname=None, delete=True, profile="default", progress=False):
    """The result of a finished async job.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    jobId : str
        The job id that an async query returned.
    fname : str, optional
        A local file to write the result to (then ``'OK'`` is returned).
    delete : bool, optional
        Passed to the service, as dl does.
    profile : str, optional
        The service profile (one exists: ``'default'``).
    progress : bool, optional
        Accepted for dl's sake.

    Returns
    -------
    str or bytes
        Text (bytes for binary formats), ``'OK'`` after writing `fname`, or the service's message.
    """
    params = {"jobid": jobId, "delete": str(bool(delete)), "profile": _profile_param(profile)}
    try:
        with _http.stream("GET", f"{get_svc_url()}/results", tok=_http.token(token), params=params) as r:
            if r.status_code != 200:
                return r.read().decode(errors="replace")
            if fname:
                _http.write_stream(r, _local_path(fname))
                return "OK"
            body = r.read()
            kind = r.headers.get("content-type", "")
    except _http.Unreachable as exc:
        raise queryClientError(exc.message) from None
    return body.decode() if kind.startswith("text/") or "xml" in kind else body


@_http.accepts_token_first()
def error(token=None, jobId=None, profile="default"):
    """Why an async job ended in ERROR.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    jobId : str
        The job id that an async query returned.
    profile : str, optional
        The service profile (one exists: ``'default'``).

    Returns
    -------
    str
        The job's error message.
    """
    return _call("GET", "/error", token=token, params={"jobid": jobId, "profile": _profile_param(profile)}).text


@_http.accepts_token_first()
def abort(token=None, jobId=None, profile="default"):
    """Stop an async job.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    jobId : str
        The job id that an async query returned.
    profile : str, optional
        The service profile (one exists: ``'default'``).

    Returns
    -------
    str
        The service's answer.
    """
    return _call("GET", "/abort", token=token, params={"jobid": jobId, "profile": _profile_param(profile)}).text


@_http.accepts_token_first()
def wait(token=None, jobId=None, wait=3, verbose=False, profile="default"):
    """Poll until the job leaves QUEUED/EXECUTING.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    jobId : str
        The job id that an async query returned.
    wait : float, optional
        Seconds between status checks.
    verbose : bool, optional
        Print each phase.
    profile : str, optional
        The service profile (one exists: ``'default'``).

    Returns
    -------
    str
        The final phase.
    """
    while True:
        phase = status(token=token, jobId=jobId, profile=profile)
        if verbose:
            print(phase)
        if phase not in ("QUEUED", "EXECUTING"):
            return phase
        if verbose:
            print(f"Waiting {wait:g} seconds...")
        time.sleep(wait)


@_http.accepts_token_first()
def jobs(token=None, jobId=None, format="text", status="all", option="list"):
    """The user's jobs, from the Resource Manager (``/res/findJobs``).

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    jobId : str, optional
        One job only.
    format : str, optional
        ``'text'`` (a table) or ``'json'`` (a list of dicts).
    status : str, optional
        Only jobs in this phase (``'all'``: every job).
    option : str, optional
        ``'list'``, or ``'delete'`` to remove the jobs listed.

    Returns
    -------
    str or list of dict

    Raises
    ------
    queryClientError
        With the service's message when it refuses.
    """
    params = {
        "jobid": jobId or None,
        "format": format,
        "status": status,
        "option": option,
        "profile": "default",
        "debug": "False",
    }
    r = _call("GET", "/findJobs", token=token, params=params, base=_http.url("res"))
    if r.status_code != 200:
        raise queryClientError(r.text)
    if format == "json" and option != "delete":
        return json.loads(r.text.replace("'", '"')[1:-1])
    return r.text


# --- metadata --------------------------------------------------------------------------------------


def schema(value="", format="text", profile=None):
    """Schemas, a schema's tables or a table's columns.

    Parameters
    ----------
    value : str, optional
        Empty: every schema; ``'schema'``: its tables; ``'schema.table'``: its columns.
    format : str, optional
        ``'text'`` or ``'json'``.
    profile : str, optional
        The service profile (default: the one set with `set_profile`).

    Returns
    -------
    str
    """
    params = {"value": value, "format": format, "profile": profile or _state["profile"]}
    return _call("GET", "/schema", params=params, timeout=120, auth=False).text


@_http.accepts_token_first()
def list_profiles(token=None, profile=None, format="text"):
    """The service profiles.

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
    params = {"profile": profile if profile not in (None, "", "None") else None, "format": format}
    text = _call("GET", "/profiles", token=token, params=params).text
    return json.loads(text) if "{" in text else text


def services(name=None, svc_type=None, mode="list", profile="default"):
    """The services the Query Manager knows.

    Parameters
    ----------
    name : str, optional
        One service by name.
    svc_type : str, optional
        Only services of this type (e.g. ``'vos'``).
    mode : str, optional
        ``'list'``.
    profile : str, optional
        The service profile (one exists: ``'default'``).

    Returns
    -------
    str
    """
    params = {"profile": profile or None, "name": name or None, "type": svc_type or None, "mode": mode}
    return _call("GET", "/services", params=params).text


def set_timeout_request(nsec):
    """Set the timeout (s) sent with later queries (X-DL-TimeoutRequest).

    Parameters
    ----------
    nsec : int
        Seconds; the service caps it (600 sync, 30 for anonymous sync queries, 24 h async).
    """
    _state["timeout"] = int(nsec)


def get_timeout_request():
    """The timeout (s) sent with queries.

    Returns
    -------
    int
    """
    return _state["timeout"]


def set_profile(profile):
    """Set the service profile used by `schema` and later calls.

    Parameters
    ----------
    profile : str
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


def set_svc_url(svc_url):
    """Point the Query Manager calls at another URL.

    Parameters
    ----------
    svc_url : str
        The base URL, e.g. ``http://127.0.0.1:8400/query``; empty leaves it unchanged.
    """
    if svc_url:
        _http.set_url("query", svc_url)


def get_svc_url():
    """The Query Manager URL in use.

    Returns
    -------
    str
    """
    return _http.url("query")


def isAlive(svc_url=None, timeout=5):
    """Does the Query Manager answer?

    Parameters
    ----------
    svc_url : str, optional
        The URL to check; by default the one in use.
    timeout : float, optional
        Seconds to wait for the answer.

    Returns
    -------
    bool
    """
    return _http.is_alive((svc_url or get_svc_url()).strip().rstrip("/"), timeout=timeout)


# --- MyDB ----------------------------------------------------------------------------------------


def validTableName(tbl) -> bool:
    """dl's Util.validTableName: ``[a-z0-9_]``, not starting with a digit, at most schema.table.

    Parameters
    ----------
    tbl : str
        A table name, with or without ``mydb://``.

    Returns
    -------
    bool
    """
    if tbl in (None, "", "mydb://"):
        return True
    name = tbl[7:] if tbl.startswith("mydb://") else tbl
    parts = name.split(".")
    return len(parts) <= 2 and all(_NAME.match(p) for p in parts)


def _check(*tables) -> None:
    for table in tables:
        if not validTableName(table):
            raise queryClientError(f'Invalid table name: "{table}"')


def _ok(r: httpx.Response) -> bool:
    return r.status_code == 200 and r.text[:5].lower() != "error"


def _ok_or_message(r: httpx.Response) -> str:
    return "OK" if _ok(r) else r.text


def _mydb(method, path, token, **params) -> httpx.Response:
    if _state["profile"] != "default":
        params["profile"] = _state["profile"]
    return _call(method, path, token=token, params=params, timeout=httpx.Timeout(None, connect=10.0))


@_http.accepts_token_first()
def mydb_list(table=None, token=None, index=False, **kw):
    """The user's MyDB tables, one per line, or one table's columns.

    Parameters
    ----------
    table : str, optional
        A table: list its columns instead.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    index : bool, optional
        Passed to the service (list indexes).
    **kw
        ``verbose=True``: the service's full lines.

    Returns
    -------
    str
    """
    _check(table)
    r = _mydb("GET", "/list", token, table=table or "", index=str(bool(index)))
    if r.status_code != 200 or kw.get("verbose"):
        return r.text
    return "\n".join(line.split(",")[0] for line in r.text.split("\n"))


def list(table=None, token=None):  # noqa: A001 - dl's deprecated name
    """dl's deprecated name for `mydb_list`.

    Parameters
    ----------
    table : str, optional
        A table: list its columns.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
    """
    return mydb_list(table=table, token=token)


@_http.accepts_token_first()
def mydb_create(table, schema, token=None, **kw):
    """Create an empty table in the user's MyDB.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    schema : str, os.PathLike or dict
        ``'column,type'`` lines, a file of them, or a dict of column to type (in order).
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    **kw
        ``drop`` (replace an existing table, default True), ``verbose``.

    Returns
    -------
    str
        ``'OK'``.

    Raises
    ------
    queryClientError
        With the service's message when it refuses.
    """
    _check(table)
    if isinstance(schema, dict):  # dl sends only an OrderedDict; a dict keeps its order too
        schema = "".join(f"{col},{kind}\n" for col, kind in schema.items())
    elif isinstance(schema, (str, os.PathLike)) and os.path.isfile(schema):
        with open(schema) as fh:
            schema = fh.read()
    r = _mydb(
        "POST",
        "/create",
        token,
        table=table,
        verbose=str(bool(kw.get("verbose", False))),
        drop=str(bool(kw.get("drop", True))),
        schema=schema,
    )
    if not _ok(r):
        raise queryClientError(r.text)
    return "OK"


def _stage(token, data, what: str):
    """(filename for the service, temp file to remove): a URL or storage name as it is; a local
    file, a DataFrame or CSV text uploaded to the staging area as dl does (POST /storage/xfer)."""
    import pandas as pd

    if isinstance(data, str) and _SCHEME.match(data) and not data.startswith("file://"):
        return data, None
    if isinstance(data, (str, os.PathLike)) and os.path.isfile(_local_path(data)):
        path = _local_path(data)
        storeClient.chunked_upload(_http.token(token), path, os.path.basename(path))
        return os.path.basename(path), None
    fd, tmp = tempfile.mkstemp(prefix="tmp")
    os.close(fd)
    if isinstance(data, pd.DataFrame):
        data.to_csv(tmp, index=False)
    elif isinstance(data, (str, bytes)):
        with open(tmp, "wb") as fh:
            fh.write(data.encode() if isinstance(data, str) else data)
    else:
        os.unlink(tmp)
        raise queryClientError(f"Error: {what}(): Unknown data type: {type(data)}")
    try:
        storeClient.chunked_upload(_http.token(token), tmp, os.path.basename(tmp))
    except Exception:
        os.unlink(tmp)
        raise
    return os.path.basename(tmp), tmp


def _staged(token, data, what):
    try:
        return _stage(token, data, what)
    except storeClient.storeClientError as exc:
        raise queryClientError(exc.message) from None


@_http.accepts_token_first()
def mydb_insert(table, data, token=None, **kw):
    """Append rows to a MyDB table.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    data : str or pandas.DataFrame
        A CSV file, CSV text, a DataFrame, a URL or a ``vos://`` name.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    **kw
        ``verbose``: return the service's answer.

    Returns
    -------
    str
        ``'OK'``.

    Raises
    ------
    queryClientError
        With the service's message when it refuses.
    """
    _check(table)
    filename, tmp = _staged(token, data, "mydb_insert")
    try:
        r = _mydb(
            "POST", "/ingest", token, table=table, csv_header=str(bool(kw.get("csv_header", True))), filename=filename
        )
    finally:
        if tmp:
            os.unlink(tmp)
    if kw.get("verbose"):
        print(r.text)
    if not _ok(r):
        raise queryClientError(r.text)
    return "OK"


@_http.accepts_token_first()
def mydb_import(table, data, token=None, **kw):
    """A new MyDB table (or rows appended to one) from data.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    data : str or pandas.DataFrame
        A local file (CSV, FITS, VOTable, Parquet), a URL, a ``vos://`` name, CSV text or a
        DataFrame; ``'file.fits[1]'`` or ``'file.fits[EXTNAME]'`` picks a FITS extension.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    **kw
        ``append`` (add rows to an existing table), ``drop``, ``verbose`` and dl's other options.

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    _check(table)
    params = {
        "table": table,
        "delimiter": str(kw.get("delimiter", ",")),
        "append": str(kw.get("append", False)),
        "csv_header": str(kw.get("csv_header", True)),
        "schema_def": str(kw.get("schema_def", "")),
    }
    if kw.get("parse_rows"):
        params["parse_rows"] = str(kw["parse_rows"])
    if "drop" in kw:
        params["drop"] = str(bool(kw["drop"]))
    if isinstance(data, str) and "\n" not in data and data.find("[") > 0 and data.rstrip().endswith("]"):
        data, _, ext = data.rstrip()[:-1].partition("[")
        ext = ext.replace("'", "").replace('"', "")
        params["extnum" if ext[:1].isdigit() else "extname"] = ext
    try:
        filename, tmp = _staged(token, data, "mydb_import")
    except queryClientError as exc:
        return exc.message
    try:
        r = _mydb("POST", "/import", token, filename=filename, **params)
    except queryClientError as exc:
        return exc.message
    finally:
        if tmp:
            os.unlink(tmp)
    if kw.get("verbose"):
        print(r.text)
    return "OK" if _ok(r) else r.text


@_http.accepts_token_first()
def mydb_truncate(table, token=None):
    """Delete every row of a MyDB table.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    _check(table)
    return _ok_or_message(_mydb("GET", "/truncate", token, table=table))


@_http.accepts_token_first()
def mydb_index(table, column="", token=None, q3c=None, cluster=False, async_=False):
    """An index on a column, or a q3c index on two, clustered if asked.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    column : str, optional
        The column to index.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).
    q3c : str, optional
        ``'ra,dec'``: a q3c index on those columns.
    cluster : bool, optional
        Cluster the table on the index.
    async_ : bool, optional
        Return ``'OK'`` at once and build the index in a background thread.

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    _check(table)
    params = {"tbl": table, "col": column or ""}
    if q3c is not None:
        params.update(q3c=q3c, cluster=str(bool(cluster)))
    tok = _http.token(token)
    if async_:
        threading.Thread(target=_quietly, args=(_mydb, "GET", "/index", tok), kwargs=params, daemon=True).start()
        return "OK"
    return _ok_or_message(_mydb("GET", "/index", tok, **params))


def _quietly(func, *args, **kwargs):
    try:
        func(*args, **kwargs)
    except Exception:  # a background index build has no caller to tell
        pass


@_http.accepts_token_first()
def mydb_drop(table, token=None):
    """Drop a MyDB table.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    _check(table)
    return _ok_or_message(_mydb("GET", "/delete", token, table=table))


def drop(table=None, token=None):  # dl's deprecated name
    """dl's deprecated name for `mydb_drop`.

    Parameters
    ----------
    table : str
        A table of the user's MyDB (``name`` or ``mydb://name``).
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
    """
    return mydb_drop(table, token=token)


@_http.accepts_token_first()
def mydb_rename(source, target, token=None):
    """Rename a MyDB table.

    Parameters
    ----------
    source : str
        The table's name now.
    target : str
        Its new name.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    _check(source, target)
    return _ok_or_message(_mydb("GET", "/rename", token, source=source, target=target))


@_http.accepts_token_first()
def mydb_copy(source, target, token=None):
    """Copy a MyDB table.

    Parameters
    ----------
    source : str
        The table to copy.
    target : str
        The new table.
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    _check(source, target)
    return _ok_or_message(_mydb("GET", "/copy", token, source=source, target=target))


@_http.accepts_token_first()
def mydb_flush(token=None):
    """Drop every table in the user's MyDB.

    Parameters
    ----------
    token : str, optional
        A token to use instead of this process's login (it may also come first, positionally).

    Returns
    -------
    str
        ``'OK'`` or the service's message.
    """
    return _ok_or_message(_mydb("GET", "/flush", token))


__all__ = [
    "queryClientError",
    "query",
    "status",
    "results",
    "error",
    "abort",
    "wait",
    "jobs",
    "schema",
    "list_profiles",
    "services",
    "set_timeout_request",
    "get_timeout_request",
    "set_profile",
    "get_profile",
    "set_svc_url",
    "get_svc_url",
    "isAlive",
    "mydb_list",
    "mydb_create",
    "mydb_insert",
    "mydb_import",
    "mydb_truncate",
    "mydb_index",
    "mydb_drop",
    "mydb_rename",
    "mydb_copy",
    "mydb_flush",
    "validTableName",
    "convert",
]
