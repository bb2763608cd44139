"""/hooks: webhooks. POST /hooks/notebooks publishes the lessons when GitHub reports a push.

Point a GitHub webhook (content type application/json or form, "just the push event") at
``<service>/hooks/notebooks`` with the secret in $STARBOX_HOME/secrets/webhook.secret
(`starbox notebooks webhook` prints both). Order of checks:

0. No secret configured (`starbox notebooks webhook` makes it): 404 (no webhook here yet), and
   nothing is read or made.
   The body is bounded while it streams in (25 MB, GitHub's cap; a body without Content-Length
   too): larger, 413.
1. X-Hub-Signature-256 (HMAC-SHA256 of the raw body with the shared secret, compared in constant
   time) before anything else: a missing or wrong one gets 401 and nothing is parsed or stored.
2. `ping` answers 200; events other than `push` are ignored (200).
3. The delivery: X-GitHub-Delivery is required for a push; an id (or an identical signed body)
   seen before is ignored (200), so redeliveries and replays never publish twice.
4. The repository (see webhook.repository_matches: owner/name for a URL setting, any for a
   local path) and the branch (`ref` must be refs/heads/<lessons_branch>); others: 200 ignored.
5. The publish runs in a background thread (one at a time, later pushes collapse into one
   more); the answer is 202 at once. `starbox notebooks status` shows how it went.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from starbox import keys
from starbox.notebooks import publish, webhook

router = APIRouter()
MAX_BODY = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
_background = publish.Background()


def _answer(status_code: int, status: str, reason: str, **extra) -> JSONResponse:
    return JSONResponse({"status": status, "reason": reason, **extra}, status_code=status_code)


def _payload(body: bytes, content_type: str):
    if content_type.startswith("application/x-www-form-urlencoded"):
        values = parse_qs(body.decode("utf-8"), keep_blank_values=True).get("payload")
        if not values:
            raise ValueError("the form has no payload field")
        return json.loads(values[0])
    return json.loads(body)


@router.post("/notebooks", max_body_size=MAX_BODY)  # counted while it streams in
async def notebooks(request: Request) -> JSONResponse:
    """GitHub's push webhook: publish the lesson notebooks when their branch moves."""
    settings = request.app.state.settings
    if keys.webhook_secret(settings, create=False) is None:
        return _answer(
            404,
            "refused",
            "no webhook secret is configured on this appliance: the admin runs "
            "`starbox notebooks webhook` to make one and set it in GitHub",
        )
    size = request.headers.get("content-length")
    if size and size.isdigit() and int(size) > MAX_BODY:
        return _answer(413, "refused", "payload larger than 25 MB")
    try:
        body = await request.body()
    except StarletteHTTPException as exc:
        if exc.status_code == 413:
            return _answer(413, "refused", "payload larger than 25 MB")
        raise
    if not webhook.signature_ok(settings, body, request.headers.get("x-hub-signature-256")):
        return _answer(
            401,
            "refused",
            "missing or bad X-Hub-Signature-256 (HMAC-SHA256 of the body with the secret in secrets/webhook.secret)",
        )
    event = request.headers.get("x-github-event", "push")
    try:
        payload = _payload(body, request.headers.get("content-type", "application/json"))
    except (ValueError, UnicodeDecodeError) as exc:
        return _answer(400, "refused", f"the body is not a JSON push event: {exc}")
    if not isinstance(payload, dict):
        return _answer(400, "refused", "the body is not a JSON object")
    if event == "ping":
        return _answer(200, "ok", "pong")
    if event != "push":
        return _answer(200, "ignored", f"event {event!r} (only push events publish)")

    delivery = request.headers.get("x-github-delivery", "").strip()
    if not delivery:
        return _answer(400, "refused", "missing X-GitHub-Delivery header")
    if not webhook.remember_delivery(settings, delivery, hashlib.sha256(body).hexdigest()):
        return _answer(200, "ignored", f"delivery {delivery} was already handled")

    matches, expected = webhook.repository_matches(settings, payload.get("repository") or {})
    if not matches:
        name = (payload.get("repository") or {}).get("full_name", "?")
        return _answer(200, "ignored", f"repository {name} is not the configured one ({expected})")
    ref, want = payload.get("ref", ""), f"refs/heads/{settings.lessons_branch}"
    if ref != want:
        return _answer(200, "ignored", f"push to {ref or '(no ref)'}; only {want} is published")
    if payload.get("deleted"):
        return _answer(200, "ignored", f"{ref} was deleted")

    after = str(payload.get("after") or "")[:12]
    state = _background.request(settings, f"webhook {delivery} {after}".rstrip())
    return _answer(202, "accepted", state, delivery=delivery, commit=after)
