"""Password guessing (issue 11, item 13): failed password checks are counted, refused early, and
the number of argon2 verifications running at once is bounded.

Keys, each a sliding window of failure times (login_window_s):
- (account, client address): after login_failures failures every attempt, the right password
  too, is refused with 429 and Retry-After for a lockout that doubles with each further failure
  (login_lockout_s, 2x, 4x ... at most the window). Per account *and* address, so a guesser
  cannot lock the real user out from elsewhere; a success clears the pair.
- the client address over all accounts (password spraying): login_address_failures.
A refused attempt costs no argon2 and no database connection. At most login_verify_in_flight
checks (~140 ms of CPU each) run at once; a few more wait up to WAIT_S for a slot, the rest
answer 503 with Retry-After at once, so guessing cannot take every core. Memory is bounded: at most MAX_KEYS keys (least recently used go first),
each holding a bounded number of times.

The client address is the TCP peer, or for the hub's proxy on its unix socket the address the
proxy saw (deps.client_address); a proxy of the admin's own in front of the service makes all its
clients one address, which is why the per-address limit is much higher than the per-pair one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from contextlib import contextmanager
from typing import Iterator

from starbox.errors import TooManyRequests, Unavailable
from starbox.settings import Settings

MAX_KEYS = 10_000
# A login finding every check slot taken waits this long (s) for one, with at most MAX_WAITING
# waiting (each holds a worker thread): thirty students logging in at once are served within a
# few seconds, while a flood of guesses is refused at once instead of holding the threads.
WAIT_S = 3.0
MAX_WAITING = 16
_EXTRA = 12  # failures kept beyond a limit: enough for the lockout to reach the window


class Busy(Unavailable):
    def __init__(self, message: str, retry_after: int = 1):
        super().__init__(message)
        self.retry_after = retry_after


class Attempt:
    """One password check: the code inside `attempt()` sets `failed` (or raises) when it failed."""

    failed = False


class LoginLimiter:
    def __init__(self, settings: Settings, clock=time.monotonic):
        self.s, self._clock = settings, clock
        self._fails: OrderedDict[tuple, deque] = OrderedDict()
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, settings.login_verify_in_flight))
        self._waiting = 0

    def _limit(self, key: tuple) -> int:
        return self.s.login_failures if key[0] == "pair" else self.s.login_address_failures

    def _times(self, key: tuple, now: float) -> deque | None:
        times = self._fails.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.s.login_window_s:
            times.popleft()
        if not times:
            del self._fails[key]
            return None
        return times

    def _wait(self, key: tuple, now: float) -> float:
        """Seconds this key is still locked out (0: free)."""
        times = self._times(key, now)
        limit = self._limit(key)
        if times is None or len(times) < limit:
            return 0.0
        lockout = min(self.s.login_window_s, self.s.login_lockout_s * 2 ** (len(times) - limit))
        return max(0.0, times[-1] + lockout - now)

    def _keys(self, username: str, address: str) -> list[tuple]:
        return [("pair", username, address), ("address", address)]

    def check(self, username: str, address: str) -> None:
        """TooManyRequests if this account (from this address) or this address is locked out."""
        now = self._clock()
        with self._lock:
            pair, addr = (self._wait(k, now) for k in self._keys(username, address))
        if pair or addr:
            who = f"account {username} from your address" if pair >= addr else "your address"
            wait = max(1, math.ceil(max(pair, addr)))
            raise TooManyRequests(f"Error: too many failed logins for {who}; try again in {wait} s", retry_after=wait)

    def record(self, username: str, address: str, ok: bool) -> None:
        now = self._clock()
        pair, addr = self._keys(username, address)
        with self._lock:
            if ok:
                self._fails.pop(pair, None)
                return
            for key in (pair, addr):
                times = self._times(key, now)
                if times is None:
                    times = self._fails[key] = deque(maxlen=self._limit(key) + _EXTRA)
                times.append(now)
                self._fails.move_to_end(key)
            while len(self._fails) > MAX_KEYS:
                self._fails.popitem(last=False)

    def _slot(self) -> bool:
        """A check slot: at once, or after a bounded wait while few others wait."""
        if self._slots.acquire(blocking=False):
            return True
        with self._lock:
            if self._waiting >= MAX_WAITING:
                return False
            self._waiting += 1
        try:
            return self._slots.acquire(timeout=WAIT_S)
        finally:
            with self._lock:
                self._waiting -= 1

    @contextmanager
    def attempt(self, username: str, address: str) -> Iterator[Attempt]:
        """Around one password check: refuse early (429 locked out, 503 too many checks at once),
        then count the outcome. An exception inside counts as a failure."""
        self.check(username, address)
        if not self._slot():
            raise Busy("Error: too many logins are being checked at once; try again in a second")
        attempt = Attempt()
        try:
            yield attempt
        except BaseException:
            self._slots.release()
            self.record(username, address, ok=False)
            raise
        self._slots.release()
        self.record(username, address, ok=not attempt.failed)


_create = threading.Lock()


def of(app) -> LoginLimiter:
    """The application's limiter, made on first use."""
    limiter = getattr(app.state, "login_limiter", None)
    if limiter is None:
        with _create:
            limiter = getattr(app.state, "login_limiter", None)
            if limiter is None:
                limiter = app.state.login_limiter = LoginLimiter(app.state.settings)
    return limiter
