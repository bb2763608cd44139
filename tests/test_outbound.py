"""SSRF (issue 11 item 4): every URL the service fetches for a caller (GET /storage/load,
/query/import?filename=http..., TAP UPLOAD=t,http://...) goes through starbox.outbound: internal
addresses are refused whatever their notation, every redirect hop is checked, the connection goes
to the checked address, bodies are capped, and network failures all read the same, so TAP
uploads cannot scan ports. Real service, real HTTP servers on 127.0.0.1, no mocks."""

from __future__ import annotations

import dataclasses
import http.server
import io
import socket
import threading
import xml.etree.ElementTree as ET
from contextlib import ExitStack

import httpx
import psutil
import pytest
from astropy.io.votable import from_table
from astropy.table import Table

from conftest import free_port
from fetching import fetching_service  # noqa: F401 (a fixture: fetch_allow_hosts=127.0.0.1)
from starbox import outbound, storage_home
from starbox.errors import StarboxError, TooLarge, TooManyRequests
from starbox.settings import Settings

USER = "ob_user"
VOT = "{http://www.ivoa.net/xml/VOTable/v1.3}"
HINT = "the service fetches only from public addresses (an admin may allow it with the fetch_allow_hosts setting)"
STRICT = Settings()  # the defaults: nothing allowed beyond public addresses


def votable(n: int = 3) -> bytes:
    buf = io.BytesIO()
    from_table(Table({"id": list(range(n)), "ra": [10.0 + i for i in range(n)]})).to_xml(buf)
    return buf.getvalue()


class Handler(http.server.BaseHTTPRequestHandler):
    """/t.vot, /t.csv; /redir?<location> answers 302 to it; /host echoes the Host header;
    /stream sends 10 chunks of 1000 bytes without a Content-Length."""

    def log_message(self, *args):
        pass

    def _send(self, body: bytes, ctype="text/plain", status=200):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/redir":
            self.send_response(302)
            self.send_header("Location", query)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/t.vot":
            self._send(votable(), "application/x-votable+xml")
        elif path == "/t.csv":
            self._send(b"id,mag\n1,2.5\n2,3.5\n", "text/csv")
        elif path == "/host":
            self._send(self.headers.get("Host", "").encode())
        elif path == "/stream":
            self.protocol_version = "HTTP/1.0"  # no length: the body ends when the connection does
            self.send_response(200)
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b"x" * 1000)
        else:
            self._send(b"no such thing", status=404)


@pytest.fixture(scope="module")
def web():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def token(service):
    return service.add_user(USER)


def own_non_loopback() -> list[str]:
    out = []
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                out.append(a.address)
            elif a.family == socket.AF_INET6 and a.address != "::1" and "%" not in a.address:
                out.append(f"[{a.address}]")
    return out


# Each internal target, in several notations, with the reason the refusal gives.
INTERNAL = [
    ("http://localhost:{port}/x", "localhost resolves to 127.0.0.1, a loopback address"),
    ("http://127.0.0.1:{port}/x", "127.0.0.1 is a loopback address"),
    ("http://127.1:{port}/x", "127.1 resolves to 127.0.0.1, a loopback address"),
    ("http://0x7f.1:{port}/x", "0x7f.1 resolves to 127.0.0.1, a loopback address"),
    ("http://2130706433:{port}/x", "resolves to 127.0.0.1, a loopback address"),
    ("http://[::1]:{port}/x", "::1 is a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/x", "::ffff:127.0.0.1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
    ("http://10.1.2.3/", "10.1.2.3 is a private address"),
    ("http://172.16.0.1/", "172.16.0.1 is a private address"),
    ("http://192.168.1.1/", "192.168.1.1 is a private address"),
    ("http://0.0.0.0:{port}/", "0.0.0.0 is the unspecified address"),
    ("http://[fe80::1]/", "fe80::1 is a link-local address"),
    ("http://[fd00::1]/", "fd00::1 is a private address"),
    ("http://224.0.0.1/", "224.0.0.1 is a multicast address"),
    ("http://100.64.0.1/", "100.64.0.1 is not a public address"),
    ("https://127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),
    ("http://example.org@127.0.0.1:{port}/", "127.0.0.1 is a loopback address"),  # user info, not a host
] + [(f"http://{a}:{{port}}/", "is one of this machine's own addresses") for a in own_non_loopback()]


def tap_error(r) -> str:
    assert r.headers["content-type"].startswith("application/x-votable+xml"), r.text
    info = ET.fromstring(r.content).find(f"{VOT}RESOURCE/{VOT}INFO[@name='QUERY_STATUS']")
    assert info is not None and info.get("value") == "ERROR", r.text
    return info.text


def through(endpoint: str, svc, token: str | None, url: str):
    """Ask `svc` to fetch `url` through one endpoint; (status, message)."""
    with svc.client(token) as c:
        if endpoint == "load":
            r = c.get("/storage/load", params={"name": "vos://ob_loaded.bin", "endpoint": url})
            return r.status_code, r.text
        if endpoint == "import":
            r = c.post("/query/import", params={"table": "ob_imported", "filename": url})
            return r.status_code, r.text
        data = {"QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": f"t,{url}"}
        r = c.post("/tap/sync", data=data) if endpoint == "tap" else c.post("/tap/async", data=data)
        return r.status_code, tap_error(r)


ENDPOINTS = ["load", "import", "tap", "tap-async"]


def caller(endpoint, token):
    return None if endpoint.startswith("tap") else token  # TAP: anonymous


def prefix(endpoint: str) -> str:
    return "Error: UPLOAD t: could not fetch " if endpoint.startswith("tap") else "Error: could not fetch "


# -- the policy, function by function --------------------------------------------------------------

@pytest.mark.unit
@pytest.mark.parametrize("url,reason", INTERNAL)
def test_check_refuses_internal_addresses(url, reason):
    url = url.format(port=free_port())
    with pytest.raises(StarboxError) as e:
        outbound.check(STRICT, url)
    assert e.value.status == 400
    assert str(e.value).startswith(f"Error: could not fetch {url}: ") and reason in str(e.value), str(e.value)
    assert str(e.value).endswith(HINT)


@pytest.mark.unit
def test_check_refuses_other_schemes_and_bad_urls():
    for url, said in (("file:///etc/passwd", "only http:// and https://"), ("gopher://127.0.0.1:25/_HELO", "only http"),
                      ("ftp://example.org/x", "only http"), ("http:///x", "names no host"),
                      ("http://nonexistent.invalid/", "the host nonexistent.invalid is not known")):
        with pytest.raises(StarboxError) as e:
            outbound.check(STRICT, url)
        assert e.value.status == 400 and str(e.value).startswith(f"Error: could not fetch {url}: "), str(e.value)
        assert said in str(e.value), str(e.value)


@pytest.mark.unit
def test_own_address_is_refused_even_if_public():
    ip = outbound.ipaddress.ip_address("192.0.43.10")
    assert outbound.refusal(ip, set()) is None
    assert outbound.refusal(ip, {ip}) == "one of this machine's own addresses"
    # IPv4 inside IPv6 counts as the IPv4 address
    for wrapped in ("::ffff:10.0.0.1", "64:ff9b::a00:1", "2002:0a00:0001::1"):
        assert outbound.refusal(outbound.ipaddress.ip_address(wrapped), set()) == "a private address", wrapped


@pytest.mark.unit
def test_allow_list_names_and_networks(web):
    port = web.rsplit(":", 1)[1]
    by_cidr = dataclasses.replace(STRICT, fetch_allow_hosts=" 127.0.0.0/8 , mirror.example ")
    assert outbound.check(by_cidr, f"http://127.0.0.2:{port}/").addresses == [outbound.ipaddress.ip_address("127.0.0.2")]
    with pytest.raises(StarboxError, match="10.0.0.1 is a private address"):
        outbound.check(by_cidr, "http://10.0.0.1/")
    by_name = dataclasses.replace(STRICT, fetch_allow_hosts="localhost")
    assert outbound.check(by_name, f"http://LOCALHOST:{port}/").host == "localhost"
    with pytest.raises(StarboxError, match="loopback"):
        outbound.check(by_name, f"http://127.0.0.1:{port}/")  # the name is allowed, not its address


@pytest.mark.unit
def test_connection_goes_to_the_checked_address(web):
    """No second lookup: a name that does not resolve at all still reaches the address that was
    checked, with its own name in Host (what DNS rebinding would need to change)."""
    port = int(web.rsplit(":", 1)[1])
    target = outbound.Target(httpx.URL(f"http://rebind.invalid:{port}/host"), "rebind.invalid",
                             [outbound.ipaddress.ip_address("127.0.0.1")])
    with httpx.Client(trust_env=False) as client:
        r = outbound._connect(client, target)
        r.read()
    assert r.status_code == 200 and r.text == f"rebind.invalid:{port}"


@pytest.mark.unit
def test_body_cap_without_content_length(web):
    allow = dataclasses.replace(STRICT, fetch_allow_hosts="127.0.0.1")
    assert len(outbound.fetch_bytes(allow, f"{web}/stream", limit=10_000, too_large="big")) == 10_000
    with pytest.raises(TooLarge, match="^too big$"):
        outbound.fetch_bytes(allow, f"{web}/stream", limit=9_999, too_large="too big")


@pytest.mark.unit
def test_anonymous_fetches_in_flight_are_bounded(web):
    allow = dataclasses.replace(STRICT, fetch_allow_hosts="127.0.0.1")
    with ExitStack() as held:
        for _ in range(outbound.ANON_FETCHES):
            held.enter_context(outbound.stream(allow, f"{web}/t.csv", limit=1000, too_large="big", anonymous=True))
        with pytest.raises(TooManyRequests) as e:
            with outbound.stream(allow, f"{web}/t.csv", limit=1000, too_large="big", anonymous=True):
                pass
        assert e.value.status == 429 and "too many fetches" in str(e.value)
    assert outbound.fetch_bytes(allow, f"{web}/t.csv", limit=1000, too_large="big", anonymous=True)  # given back


# -- the attacks, through the endpoints -------------------------------------------------------------

@pytest.mark.system
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_internal_addresses_refused_by_every_endpoint(service, token, web, endpoint):
    port = web.rsplit(":", 1)[1]  # a real server listens there: nothing may reach it
    for template, reason in INTERNAL + [(web + "/t.vot", "127.0.0.1 is a loopback address")]:
        url = template.format(port=port)
        status, text = through(endpoint, service, caller(endpoint, token), url)
        assert status == 400, (endpoint, url, status, text)
        assert text.startswith(prefix(endpoint) + url + ": ") and reason in text and text.endswith(HINT), text
    assert not (storage_home.root(service.settings, USER) / "ob_loaded.bin").exists()


@pytest.mark.system
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_other_schemes_refused_by_every_endpoint(service, token, endpoint):
    for url in ("file:///etc/passwd", "gopher://127.0.0.1:5432/_x", "dict://127.0.0.1:6379/info"):
        status, text = through(endpoint, service, caller(endpoint, token), url)
        assert 400 <= status < 500 and "Traceback" not in text and "root:" not in text, (endpoint, url, status, text)
        if endpoint == "load":
            assert status == 400 and "must be an http:// or https:// URL" in text
        elif endpoint.startswith("tap"):
            assert status == 400 and "use param:part (a part of a multipart POST) or an http(s) URL" in text


@pytest.mark.system
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_redirects_are_checked_hop_by_hop(service, fetching_service, token, web, endpoint):
    """The local server is allowed (fetch_allow_hosts=127.0.0.1); where it redirects is checked again."""
    for hop, reason in (("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a link-local address"),
                        ("http://127.0.0.2:{port}/t.vot", "127.0.0.2 is a loopback address"),
                        ("http://[::1]:{port}/t.vot", "::1 is a loopback address"),
                        ("http://10.0.0.1/", "10.0.0.1 is a private address"),
                        ("file:///etc/passwd", "only http:// and https:// URLs can be fetched")):
        hop = hop.format(port=web.rsplit(":", 1)[1])
        url = f"{web}/redir?{hop}"
        status, text = through(endpoint, fetching_service, caller(endpoint, token), url)
        assert status == 400, (endpoint, url, status, text)
        assert text.startswith(prefix(endpoint) + url + ": it redirects to ") and reason in text, text
    loop = f"{web}/redir?" + "/redir?" * 6 + "/t.vot"
    status, text = through(endpoint, fetching_service, caller(endpoint, token), loop)
    assert status == 502 and text == f"{prefix(endpoint)}{loop}: more than {outbound.MAX_REDIRECTS} redirects"


@pytest.mark.system
def test_allowed_redirects_and_hosts_work(fetching_service, token, web):
    with fetching_service.client() as anon:  # anonymous TAP UPLOAD by URL, through a redirect
        r = anon.post("/tap/sync", data={"QUERY": "SELECT id, ra FROM TAP_UPLOAD.t ORDER BY id",
                                         "UPLOAD": f"t,{web}/redir?/t.vot", "RESPONSEFORMAT": "csv"})
        lines = r.text.split()
        assert r.status_code == 200 and lines[0] == "id,ra" and [x.split(",")[0] for x in lines[1:]] == ["0", "1", "2"], r.text
    with fetching_service.client(token) as c:
        r = c.get("/storage/load", params={"name": "vos://ob_loaded.csv", "endpoint": f"{web}/redir?/t.csv"})
        assert r.status_code == 200 and r.text == "OK"
        r = c.post("/query/import", params={"table": "ob_imported", "filename": f"{web}/t.csv"})
        assert r.status_code == 200 and r.text == "OK"
        assert c.get("/query/query", params={"sql": "SELECT count(*) FROM mydb://ob_imported", "ofmt": "csv"}
                     ).text.split() == ["count", "2"]
        c.get("/query/delete", params={"table": "ob_imported"})
    path = storage_home.root(fetching_service.settings, USER) / "ob_loaded.csv"
    assert path.read_bytes() == b"id,mag\n1,2.5\n2,3.5\n"
    path.unlink()


def _ports():
    """An open port that does not speak HTTP (a raw listener that says a banner and hangs up)
    and a closed one."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    threading.Thread(target=serve, daemon=True).start()
    return listener, listener.getsockname()[1], free_port()


@pytest.mark.system
@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_port_scan_tells_nothing(service, fetching_service, token, endpoint):
    listener, open_port, closed_port = _ports()
    try:
        for svc, status in ((service, 400), (fetching_service, 502)):  # refused first; allowed: then failing
            said = {}
            for port in (open_port, closed_port, service.settings.pg_port):
                url = f"http://127.0.0.1:{port}/"
                code, text = through(endpoint, svc, caller(endpoint, token), url)
                assert code == status, (endpoint, port, code, text)
                said[port] = text.replace(str(port), "PORT")
            assert len(set(said.values())) == 1, said  # open, closed, PostgreSQL: the same words
            if status == 502:
                assert said[open_port] == prefix(endpoint) + "http://127.0.0.1:PORT/"
    finally:
        listener.close()


@pytest.mark.system
def test_anonymous_cannot_load_or_import(service):
    with service.client() as anon:
        r = anon.get("/storage/load", params={"name": "vos://x", "endpoint": "http://192.0.43.10/"})
        assert r.status_code == 403, r.text
        r = anon.post("/query/import", params={"table": "x", "filename": "http://192.0.43.10/x.csv"})
        assert r.status_code == 401, r.text
