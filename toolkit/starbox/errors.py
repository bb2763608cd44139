"""The one exception type users see: its message is the whole story, one line, no traceback."""


class StarboxError(Exception):
    """A refusal or failure with a clear, user-facing message."""
