"""IVOA protocols on the query machinery of starbox.query: TAP 1.1 (DALI 1.1, UWS 1.1, VOSI),
and Simple Cone Search 1.03.

- adql.py: ADQL -> PostgreSQL (queryparser-python3, plus the little it lacks), MyDB and TAP_UPLOAD names
- geometry.py: the pgsphere output of queryparser rewritten onto the spatial indexes (q3c, pgsphere)
- query.py: TAP parameters, formats and MAXREC, and running a query (sync, or as a job)
- votable.py: the VOTable writer (BINARY2 or TABLEDATA, streamed) and error documents
- metadata.py: TAP_SCHEMA: units and UCDs of result columns, and the VOSI tables document
- upload.py: TAP UPLOAD of VOTables; uws.py: async jobs; vosi.py, examples.py, scs.py

The service's routers (service/routers/tap.py and scs.py) only turn HTTP into calls of these.
"""
