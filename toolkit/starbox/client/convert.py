"""`dl.helpers.utils.convert`: a query result (CSV text, or a VOTable) to a Python structure,
plus readers for the Arrow and Parquet bodies of the toolkit's fast paths.

    convert(inp, outfmt='pandas', verbose=False, **kwargs)

outfmt: 'string', 'array', 'structarray', 'pandas', 'table' or 'votable'; kwargs go to the
reader, e.g. convert(inp, 'pandas', na_values='Infinity'). As in dl, a repeated column name in
the CSV header gets a suffix (ra, ra_1, ra_2).

Deliberate differences from dl: Arrow or Parquet bytes are recognised and read with pyarrow
(then turned into the asked outfmt); an unknown outfmt raises ValueError with the choices
instead of KeyError. pandas, numpy, astropy and pyarrow are imported only when needed.
"""

from __future__ import annotations

from io import BytesIO
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas

OUTFMTS = {
    "string": "CSV formatted table as a string",
    "array": "Numpy array",
    "structarray": "Numpy structured / record array",
    "pandas": "Pandas dataframe",
    "table": "Astropy Table",
    "votable": "Astropy VOtable",
}
ARROW_MAGIC = (b"\xff\xff\xff\xff", b"ARROW1")  # IPC stream (continuation marker) / IPC file
PARQUET_MAGIC = b"PAR1"


def convert(inp, outfmt: str = "pandas", verbose: bool = False, **kwargs):
    """Convert a query result to the structure `outfmt` names (dl's ``helpers.utils.convert``).

    Parameters
    ----------
    inp : str or bytes
        CSV text (as ``qc.query`` returns it), or Arrow / Parquet bytes.
    outfmt : str, optional
        ``'string'`` (CSV text), ``'array'`` (numpy array), ``'structarray'`` (numpy record
        array), ``'pandas'`` (a DataFrame, the default), ``'table'`` (an astropy Table) or
        ``'votable'`` (an astropy VOTable).
    verbose : bool, optional
        Print what is returned.
    **kwargs
        Passed to the reader (pandas, numpy or astropy) of text input.

    Returns
    -------
    object
        The converted result.

    Raises
    ------
    ValueError
        For an unknown `outfmt`.
    TypeError
        When `inp` is neither str nor bytes.
    """
    if outfmt not in OUTFMTS:
        raise ValueError(f"unknown outfmt {outfmt!r}; use one of {', '.join(OUTFMTS)}")
    if isinstance(inp, bytes) and (inp.startswith(ARROW_MAGIC) or inp.startswith(PARQUET_MAGIC)):
        output = _from_frame(from_parquet(inp) if inp.startswith(PARQUET_MAGIC) else from_arrow(inp), outfmt)
    elif isinstance(inp, (bytes, str)):
        text = inp.decode() if isinstance(inp, bytes) else inp
        output = _READERS[outfmt](text if outfmt == "votable" else dedupe_header(text), **kwargs)
    else:
        raise TypeError("Input must be of bytes or str type.")
    if verbose:
        print(f"Returning {OUTFMTS[outfmt]}")
    return output


def dedupe_header(csv_text: str) -> str:
    """Data Lab's rule for a repeated column name in the first line: ra, ra_1, ra_2."""
    head, sep, rest = csv_text.partition("\n")
    seen: dict[str, int] = {}
    names = []
    for name in head.split(","):
        n = seen.get(name, 0)
        seen[name] = n + 1
        names.append(name if n == 0 else f"{name}_{n}")
    return ",".join(names) + sep + rest


def from_arrow(body) -> "pandas.DataFrame":
    """An Arrow IPC stream (bytes or a readable file object) as a DataFrame."""
    import pyarrow as pa

    source = BytesIO(body) if isinstance(body, (bytes, bytearray, memoryview)) else body
    if isinstance(body, (bytes, bytearray)) and bytes(body[:6]) == b"ARROW1":
        return pa.ipc.open_file(source).read_pandas()
    return pa.ipc.open_stream(source).read_pandas()


def from_parquet(body) -> "pandas.DataFrame":
    """Parquet bytes (or a seekable file object) as a DataFrame."""
    import pyarrow.parquet as pq

    source = BytesIO(body) if isinstance(body, (bytes, bytearray, memoryview)) else body
    return pq.read_table(source).to_pandas()


def _from_frame(df, outfmt: str):
    if outfmt == "pandas":
        return df
    if outfmt == "string":
        return df.to_csv(index=False)
    if outfmt == "array":
        return df.to_numpy(dtype=float)
    if outfmt == "structarray":
        return df.to_records(index=False)
    if outfmt == "table":
        from astropy.table import Table

        return Table.from_pandas(df)
    raise ValueError("a VOTable cannot be made from Arrow or Parquet data; use outfmt='table'")


def _string(text: str, **kwargs) -> str:
    return text


def _array(text: str, **kwargs):
    import numpy as np

    return np.loadtxt(BytesIO(text.encode()), unpack=False, skiprows=1, delimiter=",", **kwargs)


def _structarray(text: str, **kwargs):
    import numpy as np

    return np.genfromtxt(BytesIO(text.encode()), dtype=float, delimiter=",", names=True, **kwargs)


def _pandas(text: str, **kwargs):
    import pandas as pd

    return pd.read_csv(BytesIO(text.encode()), **kwargs)


def _table(text: str, **kwargs):
    from astropy.table import Table

    return Table.read(BytesIO(text.encode()), format="csv", **kwargs)


def _votable(text: str, **kwargs):
    from astropy.io.votable import parse_single_table

    return parse_single_table(BytesIO(text.encode()), **kwargs)


_READERS = {
    "string": _string,
    "array": _array,
    "structarray": _structarray,
    "pandas": _pandas,
    "table": _table,
    "votable": _votable,
}
