"""DALI request parameters: from a query string, a urlencoded body or a multipart body.

Parameter names are case-insensitive (DALI 1.1 section 3.1); values are kept as sent. Multipart
bodies (TAP UPLOAD) are read here, so the service needs no extra dependency for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starbox.errors import StarboxError, TooLarge

MAX_BODY = (64 << 20) + (1 << 20)  # the upload limit plus room for the other parameters


@dataclass
class Params:
    values: dict[str, list[str]] = field(default_factory=dict)  # upper-case name -> values
    files: dict[str, bytes] = field(default_factory=dict)  # multipart parts that were files

    def get(self, name: str, default: str | None = None) -> str | None:
        vals = self.values.get(name.upper())
        return vals[0] if vals else default

    def all(self, name: str) -> list[str]:
        return self.values.get(name.upper(), [])

    def add(self, name: str, value: str) -> None:
        self.values.setdefault(name.upper(), []).append(value)

    def __contains__(self, name: str) -> bool:
        return name.upper() in self.values

    def as_dict(self) -> dict[str, str]:
        """One value per parameter, for storing a job's parameters (lower-case names, UWS style)."""
        return {k.lower(): v[0] for k, v in self.values.items()}


def parse(query_string: str, content_type: str | None, body: bytes) -> Params:
    p = Params()
    for k, v in parse_qsl(query_string or "", keep_blank_values=True):
        p.add(k, v)
    if not body:
        return p
    if len(body) > MAX_BODY:
        raise TooLarge(f"Error: the request is larger than {MAX_BODY >> 20} MB")
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        _multipart(p, content_type or "", body)
    elif ctype in ("application/x-www-form-urlencoded", "", "text/plain"):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise StarboxError("Error: the request body is not UTF-8 text") from None
        for k, v in parse_qsl(text, keep_blank_values=True):
            p.add(k, v)
    else:
        raise StarboxError(
            f"Error: unsupported request body type {ctype!r}; send "
            "application/x-www-form-urlencoded or multipart/form-data"
        )
    return p


_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.I)


def _disposition(value: str, key: str) -> str | None:
    m = re.search(rf'(?:^|;)\s*{key}\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))', value, re.I)
    return None if m is None else (m.group(1) if m.group(1) is not None else m.group(2))


def _multipart(p: Params, content_type: str, body: bytes) -> None:
    """multipart/form-data (RFC 7578). The standard library's email parser is not used: it strips
    the angle brackets of boundaries such as STIL's "<<<---...--->>>"."""
    m = _BOUNDARY.search(content_type)
    if not m:
        raise StarboxError("Error: the multipart body has no boundary in its Content-Type")
    delimiter = b"\r\n--" + (m.group(1) or m.group(2)).encode("latin-1")
    chunks = (b"\r\n" + body).split(delimiter)
    if len(chunks) < 3:
        raise StarboxError("Error: the multipart body could not be read (its boundary was not found)")
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _disposition(disposition, "name")
        if not name:
            continue
        ctype = headers.get("content-type", "text/plain").split(";")[0].strip().lower()
        if _disposition(disposition, "filename") is not None or ctype != "text/plain":
            p.files[name] = data
        else:
            charset = _disposition(headers.get("content-type", ""), "charset") or "utf-8"
            try:
                p.add(name, data.decode(charset, "replace"))
            except LookupError:  # a charset Python does not know: the client's mistake, not a 500
                raise StarboxError(f"Error: the multipart part {name!r} has an unknown charset {charset!r}") from None
