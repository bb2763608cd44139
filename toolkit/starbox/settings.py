"""The one settings object. No other module reads the environment.

Values come from, in rising priority: the defaults below, an optional TOML file
(``$STARBOX_CONFIG``, else ``$STARBOX_HOME/starbox.toml``), and ``STARBOX_*``
environment variables named after the fields (``STARBOX_PG_PORT=5544``).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

# Where the project itself lives (db/, lessons/, ...): two levels above this package.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Settings:
    # Where the appliance keeps everything it writes: the cluster, logs, secrets, storage, lessons.
    home: Path = field(default_factory=lambda: Path.home() / ".starbox")
    # An existing PostgreSQL server (a site admin's); empty means the embedded cluster.
    database_url: str = ""
    db_name: str = "starbox"
    pg_host: str = "127.0.0.1"
    pg_port: int = 5433
    # The unprivileged OS user that runs the embedded cluster when we are root.
    system_user: str = "starbox"
    service_host: str = "127.0.0.1"
    service_port: int = 8400
    jupyter_port: int = 8888
    voila_port: int = 8866
    # Where clients reach the service (STARBOX_URL); signed URLs and the toolkit use it.
    url: str = ""
    # The toolkit's token when no login happened in the process (set inside the appliance).
    token: str = ""
    # How the toolkit reaches the service: "http" (the URL above), or "inprocess": the service's
    # own application inside the caller's process, no network (starbox.inprocess; owner only).
    toolkit_mode: str = "http"
    # Query limits: rows a result may have (more is refused, never cut silently), timeouts (s).
    row_cap: int = 10_000_000
    sync_timeout_max: int = 600
    async_timeout_max: int = 86_400
    job_workers: int = 2
    # Async jobs, fair queueing and anonymous limits (issue 11, items 6, 7 and 9). Workers take
    # each owner's oldest queued job in turn; anonymous callers together are one owner, with 1
    # job running at a time. Jobs one logged-in user may run at once (more wait their turn):
    user_jobs_running: int = 1
    # Anonymous jobs that may wait (PENDING or QUEUED) at once; more are refused with 429.
    anon_jobs_queued: int = 4
    # The longest an anonymous async job may run (s), whatever it asks for.
    anon_async_timeout_max: int = 600
    # How long an anonymous job and its files are kept (s); then it is destroyed.
    anon_job_lifetime: int = 3600
    # Disk an anonymous job may use (MB): its result, and its TAP uploads together.
    anon_job_mb: int = 100
    # Queries in flight at once (sync queries, TAP sync, cone searches): all anonymous callers
    # together, and each logged-in user; more are refused at once with 429 and Retry-After.
    anon_queries_in_flight: int = 4
    user_queries_in_flight: int = 3
    # Worker threads that run those queries, apart from the threads every other request uses.
    query_threads: int = 32
    # The longest an anonymous sync query may run (s), whatever X-DL-TimeoutRequest asks.
    anon_sync_timeout: int = 30
    # Largest request body (MB) of most routes; TAP (its uploads) and storage uploads have their own.
    max_body_mb: int = 1
    # Storage: per-user quota, largest single upload, lifetime of signed URLs (s).
    storage_quota_mb: int = 2048
    max_upload_mb: int = 1024
    signed_url_ttl: int = 300
    # Storage hardening (issue 11, item 7): files staged with POST /storage/xfer count against
    # their owner's quota and are deleted this many hours after their last chunk.
    staging_ttl_hours: int = 24
    # TAP: MAXREC when a client gives none, and the most a client may ask for.
    tap_maxrec: int = 100_000
    tap_maxrec_max: int = 10_000_000
    # Issue 11 item 3 (ADQL bounds, starbox.adql_translate): the longest ADQL query (characters)
    # and deepest nesting of parentheses accepted before parsing; translation runs in this many
    # worker processes, and one that takes longer than the timeout (s) is killed and replaced.
    adql_max_length: int = 100_000
    adql_max_depth: int = 8
    adql_translate_workers: int = 2
    adql_translate_timeout: int = 5
    # JupyterLab and Voila run as this Starbox account (made at `up`), so lessons just work.
    local_user: str = "learner"
    # Lesson publishing: the git repository (a path or URL; empty: this project's lessons/),
    # the branch that counts, and whether a set must pass `starbox nbtest` to be published.
    lessons_repo: str = ""
    lessons_branch: str = "main"
    lessons_test: bool = True
    # Outbound fetches (issue 11 item 4, SSRF; starbox.outbound): hosts the service may fetch URLs
    # from although they are internal, e.g. a site's data mirror: comma-separated host names
    # (exact) and addresses or CIDRs ("mirror.lan,10.1.2.0/24"). Empty: public addresses only.
    fetch_allow_hosts: str = ""
    # The sample catalogs `starbox up` builds, comma-separated (leave out smash_sim, the big
    # simulated one, on tiny machines).
    sample_catalogs: str = "hipparcos,gaia_dr3,openngc,smash_sim"
    # The checkout the appliance runs from (db/, lessons/, voila_apps/).
    project_root: Path = PROJECT_ROOT

    # --- issue 11, items 7, 8, 13, 14 (hard-misc) ---
    # Password guessing (service/login_limit.py): failed logins of one account from one address
    # within login_window_s (s); after login_failures of them every attempt is refused (429) for a
    # lockout of login_lockout_s (s), doubling with each further failure, at most the window. One
    # address may fail login_address_failures times over all accounts. At most
    # login_verify_in_flight password checks (argon2, ~140 ms of CPU each) run at once (a few more
    # wait briefly, the rest: 503).
    login_failures: int = 5
    login_address_failures: int = 100
    login_window_s: int = 900
    login_lockout_s: int = 30
    login_verify_in_flight: int = 2
    # The largest result row (MB of its text), checked inside PostgreSQL before it is sent.
    max_row_mb: int = 16
    # Each user's MyDB schema (tables, indexes, TOAST), checked after each write (0: no quota).
    mydb_quota_mb: int = 2048

    # --- issue 13: the hub (`starbox up --shared`, starbox.jupyter.hub) ---
    # Shared mode: JupyterHub with Starbox logins, one JupyterLab per account, behind one public
    # HTTPS port on hub_address (0.0.0.0: every interface). hub_http_port redirects plain HTTP
    # to it (0: no redirect). Everything else (hub API, proxy API, service, Voila) stays on loopback.
    shared: bool = False
    hub_address: str = "0.0.0.0"
    hub_port: int = 8443
    hub_http_port: int = 8080
    hub_api_port: int = 8081
    hub_proxy_api_port: int = 8001
    # The site's own certificate and key (PEM files); empty: the box makes its own CA and a
    # certificate for its host name and addresses (`starbox hub ca` prints the CA).
    hub_cert: str = ""
    hub_key: str = ""
    # Unix user names for accounts: this prefix plus the account name (at most 32 characters).
    hub_user_prefix: str = "sb-"
    # Where hub users' homes are made.
    hub_homes: Path = Path("/home")
    # The labs' Python environment (root-owned, read-only to users; appliance/install.sh --hub
    # builds it) and the folder of what every user may read (lessons, kernels, lab settings).
    hub_env: Path = Path("/opt/starbox/lab")
    hub_share: Path = Path("/opt/starbox/share")
    # Idle servers stop after this many seconds: class accounts, and everyone else (researchers).
    # Idle kernels stop after hub_kernel_idle_s; a busy kernel is never stopped.
    hub_class_idle_s: int = 3600
    hub_idle_s: int = 3 * 86_400
    hub_kernel_idle_s: int = 7200
    hub_cull_every_s: int = 60
    # Spawns in flight at once, those waiting their turn included (more get "try again in a
    # minute"); labs booting at once (the rest wait in order: on a small machine more at once
    # only makes every one later); and how long a spawn may take, its wait included.
    hub_spawn_limit: int = 60
    hub_labs_booting: int = 3
    hub_spawn_timeout_s: int = 180
    # Memory a lab may use (MB; enforced where systemd runs, shown in the lab everywhere), and
    # the memory that must stay free for a new lab to start.
    hub_mem_limit_mb: int = 2048
    hub_min_free_mb: int = 1024

    # Derived locations: everything the appliance writes lives under home.
    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def log_dir(self) -> Path:
        return self.home / "logs"

    @property
    def build_dir(self) -> Path:
        return self.home / "build"

    @property
    def secrets_dir(self) -> Path:
        return self.home / "secrets"

    @property
    def storage_dir(self) -> Path:
        return self.home / "storage"

    @property
    def notebooks_latest(self) -> Path:
        """The read-only lessons every user sees: a symlink swapped atomically on publish."""
        return self.home / "notebooks-latest"

    @property
    def notebooks_versions(self) -> Path:
        return self.home / "notebooks-versions"

    @property
    def service_url(self) -> str:
        return (self.url or f"http://{self.service_host}:{self.service_port}").rstrip("/")

    @property
    def db_dir(self) -> Path:
        return self.project_root / "db"

    @property
    def embedded(self) -> bool:
        return not self.database_url

    def sync_timeout(self, anonymous: bool) -> int:
        """The ceiling of a sync query's timeout (s) for this kind of caller."""
        return min(self.anon_sync_timeout, self.sync_timeout_max) if anonymous else self.sync_timeout_max

    def async_timeout(self, anonymous: bool) -> int:
        """The ceiling of an async job's execution time (s) for this kind of caller (item 9)."""
        return min(self.anon_async_timeout_max, self.async_timeout_max) if anonymous else self.async_timeout_max


def _coerce(kind: type, raw: object):
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        if str(raw).strip().lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
            raise ValueError(f"not a yes/no value: {raw!r}")
        return str(raw).strip().lower() in ("1", "true", "yes", "on")
    if kind is int:
        return int(str(raw))
    if kind is Path:
        return Path(str(raw)).expanduser()
    return str(raw)


def load(env: dict[str, str] | None = None) -> Settings:
    """Build settings from defaults, the optional file and the environment."""
    env = dict(os.environ if env is None else env)
    # Field types are strings here (annotations are postponed by `from __future__`).
    types = {f.name: str(f.type) for f in dataclasses.fields(Settings)}
    kinds = {"int": int, "Path": Path, "str": str, "bool": bool}
    values: dict[str, object] = {}

    home = Path(env.get("STARBOX_HOME", str(Settings().home))).expanduser()
    config = Path(env.get("STARBOX_CONFIG", str(home / "starbox.toml")))
    if config.is_file():
        with config.open("rb") as fh:
            values.update(tomllib.load(fh))
    for name in types:
        key = f"STARBOX_{name.upper()}"
        if key in env:
            values[name] = env[key]
    unknown = set(values) - set(types)
    if unknown:
        raise ValueError(f"unknown setting(s) in {config}: {', '.join(sorted(unknown))}")
    return Settings(**{k: _coerce(kinds[types[k]], v) for k, v in values.items()})


@lru_cache(maxsize=1)
def get() -> Settings:
    return load()
