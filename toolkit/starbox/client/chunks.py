"""A file object over an iterator of bytes, so Arrow's readers can read a stream as it arrives."""

from __future__ import annotations

import io
from typing import Iterable


class ChunkReader(io.RawIOBase):
    """A file object over an iterator of bytes (COPY blocks, an HTTP body), for Arrow's readers."""

    def __init__(self, chunks: Iterable[bytes]):
        self._chunks = iter(chunks)
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        while not self._buf:
            try:
                self._buf = memoryview(next(self._chunks))
            except StopIteration:
                return 0
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
