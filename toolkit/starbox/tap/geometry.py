"""Spatial predicates onto the spatial indexes.

queryparser turns ADQL geometry into pgsphere expressions (`spoint(RADIANS(ra), RADIANS(dec)) @
scircle(...)`, `spoint_dwithin(...)`). Those use an index only when one exists on exactly that
expression, and `spoint_dwithin` does not exist in the pgsphere of Debian 12 at all. Here each
predicate is matched to the indexes of the table its columns come from:

- a cone, box or polygon on a table with a pgsphere index on spoint(radians(ra), radians(dec))
  keeps the pgsphere form (`<@`): it plans in microseconds, where q3c spends ~4 ms planning each
  literal cone (see /work/shared/reference/data-and-indexes.md section 3);
- on a table with only the q3c index: q3c_radial_query, q3c_poly_query, or a circle around the
  box that q3c can use, with the exact box test beside it;
- a cross-match (both positions from columns, CONTAINS(POINT, CIRCLE) or DISTANCE(...) < r)
  becomes q3c_join with the indexed (or larger) table inside: q3c_join beats the pgsphere join
  about 3x and estimates its rows sanely;
- anything else keeps queryparser's form, which is correct, only not indexed.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field

from starbox.tap.adql import Tok, _close, _significant, tokens

_NUM = r"-?\s*\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"
_COL = r'(?:"[^"]+"|[A-Za-z_]\w*)(?:\s*\.\s*(?:"[^"]+"|[A-Za-z_]\w*)){0,2}'
_ARG = rf"(?:{_COL}|{_NUM})"


def _point(n: str) -> str:
    return (
        rf"spoint\s*\(\s*RADIANS\s*\(\s*(?P<x{n}>{_ARG})\s*\)\s*,"
        rf"\s*RADIANS\s*\(\s*(?P<y{n}>{_ARG})\s*\)\s*\)"
    )


_RADIUS = r"RADIANS\s*\(\s*(?P<r>[^()]*?)\s*\)"
CIRCLE = re.compile(rf"{_point('1')}\s*(?P<op>!?<?@)\s*scircle\s*\(\s*{_point('2')}\s*,\s*{_RADIUS}\s*\)", re.I)
BOX = re.compile(rf"{_point('1')}\s*(?P<op>!?<?@)\s*sbox\s*\(\s*{_point('2')}\s*,\s*{_point('3')}\s*\)", re.I)
POLY = re.compile(rf"{_point('1')}\s*(?P<op>!?<?@)\s*spoly\s*\(\s*'(?P<poly>[^']*)'\s*\)", re.I)
DWITHIN = re.compile(rf"spoint_dwithin\s*\(\s*{_point('1')}\s*,\s*{_point('2')}\s*,\s*{_RADIUS}\s*\)", re.I)
# INTERSECTS(POINT, region) is CONTAINS(POINT, region) (ADQL 2.0, 4.2.7); pgsphere has no && on points.
POINT_OVERLAP = re.compile(rf"({_point('1')})\s*&&\s*(?=s(?:circle|box|poly)\b)", re.I)

JOIN_WORDS = {"JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL"}
END_WORDS = {"WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION", "EXCEPT", "INTERSECT"}
NOT_ALIAS = JOIN_WORDS | END_WORDS | {"ON", "USING", "AS"}


@dataclass
class TableIndex:
    q3c: set[tuple[str, str]] = field(default_factory=set)  # (ra, dec) column pairs
    spoint: set[tuple[str, str]] = field(default_factory=set)
    rows: float = 0.0


# -- which tables a query reads --------------------------------------------------------------


def _ident(t: Tok) -> str:
    return t.text[1:-1] if t.kind == "quoted" else t.text.lower()


def from_tables(sql: str) -> dict[str, tuple[str, str] | None]:
    """Names a column qualifier may use -> (schema, table), from every FROM list of the query;
    None for an ambiguous name. Unqualified tables are keyed ('', name)."""
    toks = [t for t in tokens(sql) if t.kind not in ("ws", "comment")]
    names: dict[str, tuple[str, str] | None] = {}
    in_from: list[bool] = [False]
    i = 0

    def note(key: str, value: tuple[str, str] | None) -> None:
        names[key] = value if names.get(key, value) == value else None

    def table_ref(k: int) -> int:
        if k >= len(toks):
            return k
        if toks[k].text == "(":
            k = _close(toks, k) + 1
            target = None
        elif toks[k].kind in ("name", "quoted"):
            parts = [_ident(toks[k])]
            k += 1
            while k + 1 < len(toks) and toks[k].text == ".":
                parts.append(_ident(toks[k + 1]))
                k += 2
            target = (parts[-2] if len(parts) > 1 else "", parts[-1])
            note(".".join(target).lstrip("."), target)
            note(target[1], target)
        else:
            return k
        if k < len(toks) and toks[k].upper == "AS":
            k += 1
        if k < len(toks) and toks[k].kind in ("name", "quoted") and toks[k].upper not in NOT_ALIAS:
            if target is not None:
                note(_ident(toks[k]), target)
            k += 1
        return k

    while i < len(toks):
        t = toks[i]
        if t.text == "(":
            in_from.append(False)
        elif t.text == ")":
            if len(in_from) > 1:
                in_from.pop()
        elif t.upper == "FROM" or (t.upper == "JOIN" and in_from[-1]) or (t.text == "," and in_from[-1]):
            in_from[-1] = True
            i = table_ref(i + 1)
            continue
        elif t.upper in END_WORDS or t.upper == "SELECT":
            in_from[-1] = False
        i += 1
    return names


# -- the indexes of those tables -------------------------------------------------------------

_Q3C = re.compile(r'q3c_ang2ipix\(\s*("?\w+"?)\s*,\s*("?\w+"?)\s*\)', re.I)
_SPOINT = re.compile(r'spoint\(\s*radians\(\s*("?\w+"?)\s*\)\s*,\s*radians\(\s*("?\w+"?)\s*\)\s*\)', re.I)
_cache: dict[tuple[str, str], tuple[float, TableIndex]] = {}
_lock = threading.Lock()
CACHE_S = 60.0


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith('"') else name


def load_indexes(conn, tables: set[tuple[str, str]]) -> dict[tuple[str, str], TableIndex]:
    """The q3c and pgsphere position indexes of the given (schema, table)s."""
    out = {t: TableIndex() for t in tables}
    if not tables:
        return out
    rows = conn.execute(
        "SELECT r.schema_name, r.name, r.row_estimate, pg_get_indexdef(i.indexrelid)"
        " FROM starbox_lookup.relations r LEFT JOIN pg_index i ON i.indrelid = r.oid"
        " WHERE (r.schema_name, r.name) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([s for s, _ in tables], [t for _, t in tables]),
    ).fetchall()
    for schema, table, reltuples, indexdef in rows:
        info = out.setdefault((schema, table), TableIndex())
        info.rows = float(reltuples or 0)
        for m in _Q3C.finditer(indexdef or ""):
            info.q3c.add((_unquote(m.group(1)), _unquote(m.group(2))))
        for m in _SPOINT.finditer(indexdef or ""):
            info.spoint.add((_unquote(m.group(1)), _unquote(m.group(2))))
    return out


def cached_indexes(open_conn, tables: set[tuple[str, str]]) -> dict[tuple[str, str], TableIndex]:
    now = time.monotonic()
    with _lock:
        hit = {t: v for t, (at, v) in _cache.items() if t in tables and now - at < CACHE_S}
    missing = tables - set(hit)
    if missing:
        with open_conn() as conn:
            found = load_indexes(conn, missing)
        with _lock:
            for t, v in found.items():
                _cache[t] = (now, v)
        hit.update(found)
    return hit


# -- the rewriting ---------------------------------------------------------------------------


@dataclass
class _Pos:
    x: str  # SQL text of the two coordinates
    y: str
    table: tuple[str, str] | None  # where the columns come from (None: unknown or constants)
    const: bool

    def spoint(self) -> str:
        return f"spoint(radians({self.x}), radians({self.y}))"


def _is_num(text: str) -> bool:
    try:
        float(text.replace(" ", ""))
        return True
    except ValueError:
        return False


def _split_col(text: str) -> tuple[str | None, str]:
    parts = [p.strip() for p in re.split(r"\s*\.\s*", text)]
    parts = [p[1:-1] if p.startswith('"') else p.lower() for p in parts]
    return (".".join(parts[:-1]) or None), parts[-1]


class Rewriter:
    def __init__(self, names: dict[str, tuple[str, str] | None], indexes: dict[tuple[str, str], TableIndex]):
        self.names, self.indexes = names, indexes

    def pos(self, m: re.Match, n: str) -> _Pos:
        x, y = m.group(f"x{n}").strip(), m.group(f"y{n}").strip()
        if _is_num(x) and _is_num(y):
            return _Pos(x.replace(" ", ""), y.replace(" ", ""), None, True)
        if _is_num(x) or _is_num(y):
            return _Pos(x, y, None, False)
        (qx, cx), (qy, cy) = _split_col(x), _split_col(y)
        if qx != qy:
            return _Pos(x, y, None, False)
        if qx is not None:
            return _Pos(x, y, self.names.get(qx), False)
        # Unqualified: the one table of the query that has both columns in a position index.
        owners = {t for t, info in self.indexes.items() if (cx, cy) in info.q3c | info.spoint}
        owners = {t for t in owners if t in self.names.values()}
        return _Pos(x, y, owners.pop() if len(owners) == 1 else None, False)

    def _index(self, p: _Pos, kind: str) -> bool:
        if p.table is None:
            return False
        info = self.indexes.get(p.table)
        cols = (_split_col(p.x)[1], _split_col(p.y)[1])
        return info is not None and cols in getattr(info, kind)

    def cone(self, p: _Pos, c: _Pos, r: str) -> str | None:
        if self._index(p, "spoint"):
            return f"{p.spoint()} <@ scircle(spoint(radians({c.x}), radians({c.y})), radians({r}))"
        if self._index(p, "q3c"):
            return f"q3c_radial_query({p.x}, {p.y}, {c.x}, {c.y}, {r})"
        return None

    def match(self, a: _Pos, b: _Pos, r: str) -> str | None:
        """Positions a and b within r degrees, on the best index there is."""
        if a.const and b.const:
            return None
        if b.const:
            return self.cone(a, b, r)
        if a.const:
            return self.cone(b, a, r)
        qa, qb = self._index(a, "q3c"), self._index(b, "q3c")
        if qa or qb:
            # q3c_join(ra1, dec1, ra2, dec2, r) probes the index on (ra2, dec2): put the indexed,
            # or the larger, table there.
            inner_a = qa and (not qb or self.indexes[a.table].rows >= self.indexes[b.table].rows)
            outer, inner = (b, a) if inner_a else (a, b)
            return f"q3c_join({outer.x}, {outer.y}, {inner.x}, {inner.y}, {r})"
        if self._index(a, "spoint"):
            return f"{a.spoint()} <@ scircle({b.spoint()}, radians({r}))"
        if self._index(b, "spoint"):
            return f"{b.spoint()} <@ scircle({a.spoint()}, radians({r}))"
        return None

    def circle(self, m: re.Match) -> str:
        if m.group("op").startswith("!"):
            return m.group(0)
        return self.match(self.pos(m, "1"), self.pos(m, "2"), m.group("r")) or m.group(0)

    def dwithin(self, m: re.Match) -> str:
        a, b, r = self.pos(m, "1"), self.pos(m, "2"), m.group("r")
        return self.match(a, b, r) or f"({a.spoint()} <-> {b.spoint()}) <= radians({r})"

    def box(self, m: re.Match) -> str:
        p, lo, hi = self.pos(m, "1"), self.pos(m, "2"), self.pos(m, "3")
        if m.group("op").startswith("!") or not (lo.const and hi.const) or p.const:
            return m.group(0)
        exact = (
            f"{p.spoint()} <@ sbox(spoint(radians({lo.x}), radians({lo.y})), spoint(radians({hi.x}), radians({hi.y})))"
        )
        if self._index(p, "spoint"):
            return exact
        if self._index(p, "q3c"):
            cx, cy, r = _box_circle(float(lo.x), float(lo.y), float(hi.x), float(hi.y))
            return f"(q3c_radial_query({p.x}, {p.y}, {cx!r}, {cy!r}, {r!r}) AND {exact})"
        return m.group(0)

    def poly(self, m: re.Match) -> str:
        p = self.pos(m, "1")
        if m.group("op").startswith("!") or p.const:
            return m.group(0)
        if self._index(p, "spoint"):
            return f"{p.spoint()} <@ spoly('{m.group('poly')}')"
        if self._index(p, "q3c"):
            nums = re.findall(r"-?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?", m.group("poly"))
            return f"q3c_poly_query({p.x}, {p.y}, ARRAY[{', '.join(nums)}]::double precision[])"
        return m.group(0)


def _box_circle(ra1: float, dec1: float, ra2: float, dec2: float) -> tuple[float, float, float]:
    """A circle around a box of constant-RA and constant-Dec edges: centre, and the largest
    corner distance (distances grow monotonically along each edge)."""
    cx, cy = (ra1 + ra2) / 2, (dec1 + dec2) / 2
    r = max(_dist(cx, cy, a, b) for a in (ra1, ra2) for b in (dec1, dec2))
    return cx, cy, r * (1 + 1e-9) + 1e-9


def _dist(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def rewrite(sql: str, indexes_for) -> str:
    """The query with its spatial predicates on indexes. `indexes_for(set of (schema, table))`
    returns their TableIndex."""
    if "spoint" not in sql.lower():
        return sql
    names = from_tables(sql)
    tables = {t for t in names.values() if t is not None and t[0]}
    rw = Rewriter(names, indexes_for(tables) if tables else {})
    sql = POINT_OVERLAP.sub(lambda m: f"{m.group(1)} @ ", sql)
    sql = DWITHIN.sub(rw.dwithin, sql)
    sql = CIRCLE.sub(rw.circle, sql)
    sql = BOX.sub(rw.box, sql)
    sql = POLY.sub(rw.poly, sql)
    return _no_dwithin(sql)


def _no_dwithin(sql: str) -> str:
    """Any spoint_dwithin(a, b, r) left (arguments the patterns did not take) -> (a <-> b) <= r."""
    while "spoint_dwithin" in sql.lower():
        toks = tokens(sql)
        i = next(k for k, t in enumerate(toks) if t.kind == "name" and t.text.lower() == "spoint_dwithin")
        open_i = _significant(toks, i)
        close_i = _close(toks, open_i)
        from starbox.tap.adql import _args, _text

        args = [_text(toks, s, e).strip() for s, e in _args(toks, open_i, close_i)]
        if len(args) != 3:
            break
        new = f"(({args[0]}) <-> ({args[1]})) <= ({args[2]})"
        sql = _text(toks, 0, i) + new + _text(toks, close_i + 1, len(toks))
    return sql
