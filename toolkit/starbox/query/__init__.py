"""Query execution shared by the Data Lab API, TAP and the toolkit's in-process mode:
prepare (mydb:// and ADQL), run on the user's own connection, stream in a chosen format."""

from starbox.query.prepare import Prepared, prepare
from starbox.query.run import Limits, run_to_mydb, stream

__all__ = ["Prepared", "prepare", "Limits", "stream", "run_to_mydb"]
