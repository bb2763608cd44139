"""/res: the Resource Manager: findJobs (the query client's), and the user record and
password calls of Data Lab's resClient (get, set, listFields, pwReset, create of what=user)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from starbox import accounts
from starbox.accounts import User
from starbox.errors import Forbidden, StarboxError, Unauthorized
from starbox.jobs import BULK_DELETE_REFUSED
from starbox.service.app import HELLO
from starbox.service.deps import current_user

router = APIRouter(default_response_class=PlainTextResponse)


@router.get("/")
@router.get("")
def hello() -> str:
    """Says the resource service is up."""
    return HELLO


def _when(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@router.get("/findJobs")
def find_jobs(
    request: Request,
    jobid: str | None = None,
    format: str = "text",
    status: str = "all",
    option: str = "list",
    user: User = Depends(current_user),
) -> str:
    """The user's async jobs, filtered by id, status and time."""
    jobs = request.app.state.jobs
    if option == "delete" and user.anonymous and not jobid:  # every anonymous caller's jobs at once: no
        raise Forbidden(BULK_DELETE_REFUSED)
    found = jobs.find(user, jobid or None, status)  # anonymous: only the job whose id is given
    if option == "delete":
        return f"deleted {jobs.delete(user, found)} job(s)"
    if format == "json":
        # The client turns ' into " and strips the outer characters before json.loads.
        records = [
            {
                "jobid": j["jobid"],
                "start": _when(j["started"] or j["created"]),
                "end": _when(j["finished"]),
                "status": j["phase"],
            }
            for j in found
        ]
        return '"' + repr(records) + '"'
    lines = [f"{'JobID':<22}{'Start':<21}{'End':<21}Status"]
    lines += [
        f"{j['jobid']:<22}{_when(j['started'] or j['created']):<21}{_when(j['finished']):<21}{j['phase']}"
        for j in found
    ]
    return "\n".join(lines) + "\n"


def _record_owner(request: Request, user: User, what: str) -> str:
    """Whose user record a get/set asks for: the caller's own (dl sends the name under the
    key 'None', a quirk of its client; 'username' and 'user' are read too)."""
    if what != "user":
        raise StarboxError("Error: Starbox's resource manager keeps user records only (what=user)")
    if user.anonymous:
        raise Unauthorized("Error: a user record needs a logged-in user")
    q = request.query_params
    name = q.get("None") or q.get("username") or q.get("user") or user.name
    if name != user.name:
        raise Forbidden("Error: a user may only read and change their own record")
    return name


@router.get("/get")
def get_field(request: Request, what: str = "", keyword: str = "", user: User = Depends(current_user)) -> str:
    """One field of the caller's own user record (listFields names them)."""
    name = _record_owner(request, user, what)
    with request.app.state.pools.state_conn() as conn:
        return accounts.profile_field(conn, name, keyword)


@router.get("/set")
def set_field(
    request: Request, what: str = "", keyword: str = "", value: str = "", user: User = Depends(current_user)
) -> str:
    """Change a field of the caller's own user record."""
    name = _record_owner(request, user, what)
    with request.app.state.pools.state_conn() as conn:
        accounts.set_profile_field(conn, name, keyword, value)
    return "OK"


@router.get("/listFields")
def list_fields() -> str:
    """The fields of a user record."""
    return ",".join(accounts.PROFILE_FIELDS)


@router.get("/pwReset")
def password_reset(request: Request, user: str = "", password: str = "", caller: User = Depends(current_user)) -> str:
    """A user changes their own password; every session of theirs ends."""
    with request.app.state.pools.state_conn() as conn:
        accounts.change_own_password(conn, caller, user, password)
    request.app.state.pools.forget(caller)
    return "OK"


@router.get("/create")
def create(what: str = "") -> str:
    """resClient.createUser: refused. Making an account makes a database role and schema, which
    needs the admin's rights, and the service never holds them (the security model): the admin
    makes accounts (`starbox accounts add`, `starbox accounts class add`)."""
    raise Forbidden(
        "Error: this Starbox makes no accounts on request; its admin makes them "
        "(`starbox accounts add` or a class with `starbox accounts class add`)"
    )
