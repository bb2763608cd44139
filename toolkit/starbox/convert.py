"""`dl.helpers.utils.convert` under its Starbox name (see starbox.client.convert)."""

from starbox.client.convert import OUTFMTS, convert, from_arrow, from_parquet

__all__ = ["OUTFMTS", "convert", "from_arrow", "from_parquet"]
