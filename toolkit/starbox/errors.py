"""The exceptions users see: the message is the whole story, one line, no traceback.

Each carries the HTTP status the service answers with; the CLI prints the message alone.
"""


class StarboxError(Exception):
    """A refusal or failure with a clear, user-facing message (400 over HTTP); with
    `retry_after` (s), the service also sends Retry-After."""

    status = 400
    retry_after: int | None = None


class Unauthorized(StarboxError):
    status = 401


class Forbidden(StarboxError):
    status = 403


class NotFound(StarboxError):
    status = 404


class Conflict(StarboxError):
    status = 409


class TooLarge(StarboxError):
    status = 413


class Unavailable(StarboxError):
    status = 503


class TooManyRequests(StarboxError):
    """The caller has as much work in flight as it may; `retry_after` (s) goes out as Retry-After."""

    status = 429

    def __init__(self, message: str, retry_after: int = 5):
        super().__init__(message)
        self.retry_after = retry_after
