"""Every fetch of a URL that a caller names (storage /load, MyDB /import, TAP UPLOAD by URL) goes
through here, so the service cannot be turned against its own network (SSRF).

- Only http:// and https://. The host is resolved here and every address is checked: loopback,
  link-local, private, multicast, reserved, unspecified, any other non-global address and the
  machine's own addresses (all interfaces, psutil) are refused, unless the admin's
  `fetch_allow_hosts` setting names the host or a network holding the address.
- The connection goes to the address that was checked (the URL is rewritten to the IP, Host and
  TLS SNI keep the name), so a second DNS answer (rebinding) never reaches the socket.
- Redirects are followed here, each hop checked like the first, at most MAX_REDIRECTS.
- Bodies stream with a byte cap (413 at the cap, whatever Content-Length said), a read timeout
  and an overall deadline.
- Every network failure (refused, reset, timed out, not HTTP, TLS) is the one message
  "Error: could not fetch <url>" (502), so errors do not tell an open port from a closed one.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from starbox.errors import StarboxError, TooLarge, TooManyRequests

MAX_REDIRECTS = 5
TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # connect, and each read of the body
MAX_ADDRESSES = 3  # addresses of one name tried in turn
ANON_FETCHES = 4  # anonymous fetches in flight at once (TAP UPLOAD)
REDIRECTS = (301, 302, 303, 307, 308)
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # IPv4 behind a NAT64 gateway
HINT = "an admin may allow it with the fetch_allow_hosts setting"

_anon_slots = threading.BoundedSemaphore(ANON_FETCHES)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BadGateway(StarboxError):
    """The remote server failed or could not be reached."""

    status = 502


@dataclass(frozen=True)
class Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) name or IP literal, no brackets
    addresses: list[Address]  # checked, in resolver order


# -- the policy --------------------------------------------------------------------------------


def allow_list(raw: str) -> tuple[set[str], list[ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """fetch_allow_hosts: comma-separated host names (exact) and addresses or CIDRs."""
    names, nets = set(), []
    for entry in (e.strip().lower() for e in (raw or "").split(",")):
        if not entry:
            continue
        try:
            nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
        except ValueError:
            names.add(entry.rstrip("."))
    return names, nets


def own_addresses() -> set[Address]:
    """Every address of every interface of this machine (read each time: interfaces change)."""
    out = set()
    for addrs in psutil.net_if_addrs().values():
        for a in addrs:
            if a.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    out.add(_plain(ipaddress.ip_address(a.address.split("%")[0])))
                except ValueError:
                    pass
    return out


def _plain(ip: Address) -> Address:
    """The IPv4 address inside an IPv4-mapped (::ffff:a.b.c.d) IPv6 address, else ip."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def refusal(ip: Address, own: set[Address]) -> str | None:
    """Why the service may not connect to ip by default (None: a public address)."""
    ip = _plain(ip)
    if ip.version == 6:  # IPv4 carried inside IPv6 counts as that IPv4 address
        inner = ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if inner is None and ip in NAT64:
            inner = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if inner is not None:
            why = refusal(inner, own)
            if why:
                return why
    for test, what in (
        (ip.is_loopback, "a loopback address"),
        (ip in own, "one of this machine's own addresses"),
        (ip.is_unspecified, "the unspecified address"),
        (ip.is_link_local, "a link-local address"),
        (ip.is_multicast, "a multicast address"),
        (ip.is_private, "a private address"),
        (ip.is_reserved, "a reserved address"),
        (not ip.is_global, "not a public address"),
    ):
        if test:
            return what
    return None


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _resolve(host: str, port: int) -> list[Address]:
    """The host's addresses: an IP literal as it is, else the resolver's answers (any notation
    inet_aton knows, such as 127.1 or 0x7f.1, ends up here as the address it means)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError:
        raise OSError(host) from None
    out = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if ip not in out:
            out.append(ip)
    return out


def check(settings, url: str | httpx.URL, shown: str | None = None, via: str = "") -> Target:
    """The URL parsed and its host resolved to the addresses the service may connect to; else a
    400 naming the reason (`via`: the redirect that led here, for the message)."""
    shown = shown or str(url)

    def refuse(detail: str) -> StarboxError:
        return StarboxError(
            f"Error: could not fetch {shown}: " + (f"it redirects to {via}, but " if via else "") + detail
        )

    try:
        parsed = httpx.URL(url) if isinstance(url, str) else url
        host = parsed.raw_host.decode("ascii").strip("[]").lower()
    except (httpx.InvalidURL, TypeError, ValueError, UnicodeError):
        raise refuse("that is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        raise refuse("only http:// and https:// URLs can be fetched")
    if not host:
        raise refuse("the URL names no host")
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        addresses = _resolve(host, port)
    except OSError:
        raise refuse(f"the host {host} is not known") from None
    names, nets = allow_list(getattr(settings, "fetch_allow_hosts", ""))
    if host.rstrip(".") in names:
        return Target(parsed, host, addresses)
    own = own_addresses()
    allowed: list[tuple[Address, str | None]] = []
    refused: list[tuple[Address, str | None]] = []
    for ip in addresses:
        why = None if any(_plain(ip) in net or ip in net for net in nets) else refusal(ip, own)
        (refused if why else allowed).append((ip, why))
    if not allowed:
        ip, why = refused[0]
        said = f"{host} is {why}" if _is_literal(host) else f"{host} resolves to {ip}, {why}"
        raise refuse(f"{said}; the service fetches only from public addresses ({HINT})")
    return Target(parsed, host, [ip for ip, _ in allowed])


# -- fetching ----------------------------------------------------------------------------------


def _request(client: httpx.Client, target: Target, ip: Address) -> httpx.Response:
    url = target.url.copy_with(host=str(ip))
    name = f"[{target.host}]" if ":" in target.host else target.host
    headers = {
        "Host": name if target.url.port is None else f"{name}:{target.url.port}",
        "Accept-Encoding": "identity",
        "User-Agent": "starbox",
    }
    extensions = {}
    if target.url.scheme == "https" and not _is_literal(target.host):
        extensions["sni_hostname"] = target.host  # the certificate is checked against the name
    return client.send(client.build_request("GET", url, headers=headers, extensions=extensions), stream=True)


def _connect(client: httpx.Client, target: Target) -> httpx.Response:
    for i, ip in enumerate(target.addresses[:MAX_ADDRESSES]):
        try:
            return _request(client, target, ip)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            if i + 1 >= min(len(target.addresses), MAX_ADDRESSES):
                raise
    raise httpx.ConnectError("no address")


@contextmanager
def stream(
    settings, url: str, *, limit: int, too_large: str, deadline: float = 600.0, anonymous: bool = False
) -> Iterator[Iterator[bytes]]:
    """The body of `url` as chunks, through checked hops only; TooLarge(too_large) past `limit`
    bytes, BadGateway past `deadline` seconds or on any network failure."""
    shown = url
    failed = f"Error: could not fetch {shown}"
    if anonymous and not _anon_slots.acquire(blocking=False):
        raise TooManyRequests("Error: too many fetches by anonymous users at once; try again shortly")
    try:
        started = time.monotonic()
        with httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False) as client:
            current: str | httpx.URL = url
            via = ""
            response = None
            try:
                for _ in range(MAX_REDIRECTS + 1):
                    target = check(settings, current, shown, via)
                    response = _connect(client, target)
                    location = response.headers.get("location")
                    if response.status_code not in REDIRECTS or not location:
                        break
                    response.close()
                    response = None
                    try:
                        current = target.url.join(location)
                    except (httpx.InvalidURL, ValueError):
                        raise BadGateway(f"{failed}: it redirects to an invalid URL") from None
                    via = str(current.copy_with(query=None, fragment=None))
                else:
                    raise BadGateway(f"{failed}: more than {MAX_REDIRECTS} redirects")
                if not 200 <= response.status_code < 300:
                    raise BadGateway(
                        f"{failed}: the server answered HTTP {response.status_code} {response.reason_phrase}".rstrip()
                    )
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise TooLarge(too_large)

                def chunks():
                    size = 0
                    try:
                        for chunk in response.iter_bytes(1 << 20):
                            size += len(chunk)
                            if size > limit:
                                raise TooLarge(too_large)
                            if time.monotonic() - started > deadline:
                                raise BadGateway(f"{failed}: it took longer than {deadline:.0f} s")
                            yield chunk
                    except httpx.HTTPError:
                        raise BadGateway(failed) from None

                yield chunks()
            except httpx.HTTPError:
                raise BadGateway(failed) from None
            finally:
                if response is not None:
                    response.close()
    finally:
        if anonymous:
            _anon_slots.release()


def fetch_bytes(
    settings, url: str, *, limit: int, too_large: str, deadline: float = 600.0, anonymous: bool = False
) -> bytes:
    data = bytearray()
    with stream(settings, url, limit=limit, too_large=too_large, deadline=deadline, anonymous=anonymous) as chunks:
        for chunk in chunks:
            data += chunk
    return bytes(data)


def fetch_to(settings, url: str, dest: Path, *, limit: int, too_large: str, deadline: float = 600.0) -> Path:
    with stream(settings, url, limit=limit, too_large=too_large, deadline=deadline) as chunks, dest.open("wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return dest
