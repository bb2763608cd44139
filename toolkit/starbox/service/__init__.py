"""The HTTP service: Data Lab's API (/auth, /query, /storage, /res) and, later, the IVOA protocols.

Routers stay thin: they turn HTTP into calls of plain functions in starbox that the CLI, the
tests and the toolkit's in-process mode call too.
"""
