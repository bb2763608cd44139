"""/res: the Resource Manager; the query client reaches it only for findJobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse

from starbox.accounts import User
from starbox.errors import Forbidden
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
