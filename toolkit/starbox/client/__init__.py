"""The toolkit's internals: what `authClient`, `queryClient` and `storeClient` stand on.

* http: service URLs, tokens, the one pooled httpx client, plain-language connection errors;
* mode: HTTP or in-process, for this process;
* inprocess: the httpx transport that hands each request to the service application here;
* chunks: a file object over streamed bytes, for Arrow's readers;
* convert: `dl.helpers.utils.convert` and the Arrow/Parquet readers.

The server may import from here; nothing here imports the server at module level (the
in-process transport builds the service application only when it starts), so a notebook kernel
that imports the toolkit loads neither psycopg nor FastAPI nor the accounts code.
"""
