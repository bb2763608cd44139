"""The simulated clients of the load benchmark (bench/load_bench.py), and the runner of one phase.

Run by load_bench in a subprocess of its own: locust patches the standard library with gevent
when imported, which the other benchmarks in `make bench`'s process must not get.

    python -m bench.load_users --url http://127.0.0.1:8400 --seconds 120 --good 30 --abusers 10 \
        --prefix load_u --password ... --out phase.json

Well-behaved users (`Student`) are logged in (accounts made by load_bench) and do what a class
does: log in, cone searches, TAP sync, MyDB writes, storage puts, a second or so apart. Their
requests are named "good:...": only those count in the report. Abusive clients (`Abuser`,
anonymous, no pause) send slow queries, huge results, deeply nested ADQL and password guesses;
what they get back is not measured (refusals are what they should get).
"""

from __future__ import annotations

import argparse
import json
import random
import time

from locust import HttpUser, between, task  # noqa: I001 (locust first: it patches with gevent)
from locust.env import Environment

HIPPARCOS = "hipparcos.main"
WARMUP_MAX_S = 300.0  # the most the students' warm-up may take before the measured window starts anyway
_ready = {"n": 0, "at": None}  # students warm, and when the last one was
_samples: list[tuple[float, str, float, str | None]] = []  # (start, name, ms, error) of good:* requests
_abuse: dict[str, int] = {}  # "name status" -> count
_config = argparse.Namespace(prefix="load_u", password="", good=30, adql_depth=200, victim="load_victim")


def _cone() -> tuple[float, float]:
    return random.uniform(0, 360), random.uniform(-60, 60)


class Student(HttpUser):
    """A logged-in user of a class. On start: log in and do each thing once, unmeasured (the
    service opens this user's connections then); the measured window starts when all are warm."""

    wait_time = between(0.5, 1.5)
    _next = 0

    def on_start(self):
        Student._next += 1
        self.username = f"{_config.prefix}{(Student._next - 1) % _config.good:02d}"
        self._login("warmup")
        for step in (self._cone, self._tap_sync, self._mydb_write, self._storage_put):
            step("warmup")
        _ready["n"] += 1
        if _ready["n"] == _config.good:
            _ready["at"] = time.time()

    def _headers(self) -> dict:
        return {"X-DL-AuthToken": self.token}

    def _login(self, tag: str):
        r = self.client.get(
            "/auth/login",
            params={"username": self.username},
            name=f"{tag}:login",
            headers={"X-DL-Password": _config.password},
        )
        if r.status_code == 200 or not getattr(self, "token", ""):  # a refused login keeps the old token
            self.token = r.text.strip() if r.status_code == 200 else ""

    def _cone(self, tag: str):
        ra, dec = _cone()
        self.client.get(
            "/scs/hipparcos/main",
            params={"RA": f"{ra:.3f}", "DEC": f"{dec:.3f}", "SR": "1"},
            headers=self._headers(),
            name=f"{tag}:cone search",
        )

    def _tap_sync(self, tag: str):
        ra, dec = _cone()
        adql = (
            f"SELECT TOP 200 ra, dec FROM {HIPPARCOS} WHERE 1 = CONTAINS(POINT('ICRS', ra, dec), "
            f"CIRCLE('ICRS', {ra:.3f}, {dec:.3f}, 2))"
        )
        self.client.get(
            "/tap/sync",
            params={"REQUEST": "doQuery", "LANG": "ADQL", "QUERY": adql, "FORMAT": "csv"},
            headers=self._headers(),
            name=f"{tag}:TAP sync",
        )

    def _mydb_write(self, tag: str):
        ra, _ = _cone()
        sql = f"SELECT ra, dec FROM {HIPPARCOS} WHERE ra BETWEEN {ra:.2f} AND {ra + 1:.2f}"
        self.client.get(
            "/query/query",
            params={"sql": sql, "out": "mydb://load_cone", "drop": "True"},
            headers=self._headers(),
            name=f"{tag}:MyDB write",
        )

    def _storage_put(self, tag: str):
        r = self.client.get(
            "/storage/put",
            params={"name": f"vos://load_{random.randrange(5)}.txt"},
            headers=self._headers(),
            name=f"{tag}:storage put (URL)",
        )
        if r.status_code == 200:
            self.client.put(
                r.text.strip(), data=b"x" * random.randrange(1, 64 << 10), name=f"{tag}:storage put (bytes)"
            )

    @task(1)
    def login(self):
        self._login("good")

    @task(4)
    def cone(self):
        self._cone("good")

    @task(3)
    def tap_sync(self):
        self._tap_sync("good")

    @task(2)
    def mydb_write(self):
        self._mydb_write("good")

    @task(2)
    def storage_put(self):
        self._storage_put("good")


class Abuser(HttpUser):
    """An anonymous client that wants the service for itself."""

    wait_time = between(0, 0.2)
    fixed_count = 10

    def _abuse(self, name: str, method: str, url: str, **kw):
        with self.client.request(method, url, name=f"abuse:{name}", catch_response=True, stream=True, **kw) as r:
            for _ in r.iter_content(1 << 20):  # read (and drop) whatever comes, as a real client would
                pass
            _abuse[f"{name} {r.status_code}"] = _abuse.get(f"{name} {r.status_code}", 0) + 1
            r.success()  # refusals are the right answer here; not measured

    @task
    def slow_query(self):
        self._abuse("slow query", "GET", "/query/query", params={"sql": "SELECT pg_sleep(25)"})

    @task
    def huge_result(self):
        sql = f"SELECT a.* FROM {HIPPARCOS} a, generate_series(1, 50) g"
        self._abuse("huge result", "GET", "/query/query", params={"sql": sql}, timeout=120)

    @task
    def deep_adql(self):
        n = _config.adql_depth
        adql = f"SELECT ra FROM {HIPPARCOS} WHERE ra > {'(' * n}1{')' * n}"
        self._abuse("deep ADQL", "GET", "/tap/sync", params={"QUERY": adql}, timeout=120)

    @task
    def password_guess(self):
        self._abuse(
            "login guess",
            "GET",
            "/auth/login",
            params={"username": _config.victim},
            headers={"X-DL-Password": f"guess-{random.randrange(1 << 30)}"},
        )


def _on_request(request_type, name, response_time, response_length, exception=None, start_time=None, **_):
    if name.startswith("good:"):
        _samples.append(
            (start_time or time.time(), name, response_time, None if exception is None else str(exception)[:160])
        )


def run(url: str, seconds: float, good: int, abusers: int) -> dict:
    """One phase: `good` students (and `abusers`) for `seconds`; the students' samples."""
    Abuser.fixed_count = abusers
    classes = [Student] + ([Abuser] if abusers else [])
    env = Environment(user_classes=classes, host=url)
    env.events.request.add_listener(_on_request)
    runner = env.create_local_runner()
    started = time.time()
    runner.start(good + abusers, spawn_rate=good + abusers)
    import gevent

    while _ready["at"] is None and time.time() < started + WARMUP_MAX_S:
        gevent.sleep(0.2)
    window = _ready["at"] or time.time()
    while time.time() < window + seconds:
        gevent.sleep(0.5)
    runner.quit()
    counted = [s for s in _samples if s[0] >= window]
    errors: dict[str, int] = {}
    for _, name, _, error in counted:
        if error:
            errors[f"{name}: {error}"] = errors.get(f"{name}: {error}", 0) + 1
    return {
        "seconds": seconds,
        "warmup_s": round(window - started, 1),
        "good": good,
        "abusers": abusers,
        "ms": [ms for _, _, ms, _ in counted],
        "requests": len(counted),
        "failures": sum(errors.values()),
        "errors": errors,
        "by_name": {n: sum(1 for s in counted if s[1] == n) for n in sorted({s[1] for s in counted})},
        "abuse": dict(sorted(_abuse.items())),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--good", type=int, default=30)
    ap.add_argument("--abusers", type=int, default=0)
    ap.add_argument("--prefix", default="load_u")
    ap.add_argument("--password", required=True)
    ap.add_argument("--victim", default="load_victim")
    ap.add_argument("--adql-depth", type=int, default=200)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not args.url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise SystemExit("the load benchmark runs against 127.0.0.1 only")
    _config.__dict__.update(
        prefix=args.prefix, password=args.password, good=args.good, adql_depth=args.adql_depth, victim=args.victim
    )
    result = run(args.url, args.seconds, args.good, args.abusers)
    with open(args.out, "w") as fh:
        json.dump(result, fh)


if __name__ == "__main__":
    main()
