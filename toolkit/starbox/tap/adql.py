"""ADQL -> PostgreSQL: queryparser-python3 (through starbox.query.prepare), with the little it lacks.

queryparser takes one SELECT at a time, so ADQL 2.1's WITH clauses and set operators (UNION,
INTERSECT, EXCEPT) are cut into their SELECTs first (see _query).

queryparser's grammar refuses a few things ADQL 2.1 has and PostgreSQL runs as they are (LOWER
and UPPER of a column, COALESCE, CAST, comments, hexadecimal literals, CIRCLE(ra, dec, r) on
columns). Before parsing, those are hidden behind user-defined-function names (which queryparser
passes through); after translation the names are put back. Then `mydb.t` becomes the user's
MyDB schema and `TAP_UPLOAD.t` the uploaded table, and geometry.py moves spatial predicates onto
the indexes.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from starbox import adql_translate
from starbox.accounts import User
from starbox.errors import StarboxError, Unauthorized
from starbox.query.prepare import prepare
from starbox.tap import units

TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*')
  | (?P<quoted>"(?:[^"]|"")*")
  | (?P<hex>0[xX][0-9a-fA-F]+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op><->|<=|>=|<>|!=|\|\||!@|<@|@>|!<@|&&|::)
  | (?P<other>.)
""",
    re.X | re.S,
)

# Functions queryparser's grammar cannot parse with column arguments, passed as UDFs instead.
HIDDEN_FUNCTIONS = {"LOWER", "UPPER", "COALESCE", "NULLIF", "CHAR_LENGTH", "CHARACTER_LENGTH", "OCTET_LENGTH"}
PLACEHOLDER = "sbx__"
CAST_TYPES = re.compile(
    r"^(SMALLINT|INTEGER|INT|BIGINT|REAL|DOUBLE PRECISION|TIMESTAMP|"
    r"CHAR(ACTER)?\s*(\(\s*\d+\s*\))?|VARCHAR\s*(\(\s*\d+\s*\))?)$",
    re.I,
)


@dataclass
class Tok:
    kind: str
    text: str
    pos: int

    @property
    def upper(self) -> str:
        return self.text.upper()


def tokens(text: str) -> list[Tok]:
    return [Tok(m.lastgroup, m.group(), m.start()) for m in TOKEN.finditer(text)]


def _significant(toks: list[Tok], i: int, step: int = 1) -> int:
    """Index of the next token that is not whitespace or a comment (or -1 / len)."""
    i += step
    while 0 <= i < len(toks) and toks[i].kind in ("ws", "comment"):
        i += step
    return i


def _close(toks: list[Tok], i: int) -> int:
    """Index of the ')' matching the '(' at i."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == "(":
            depth += 1
        elif toks[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    raise StarboxError(f"Error: ADQL syntax error: unbalanced parenthesis at column {toks[i].pos + 1}")


def _args(toks: list[Tok], open_i: int, close_i: int) -> list[tuple[int, int]]:
    """Top-level argument token ranges [start, end) between a '(' and its ')'."""
    out, depth, start = [], 0, open_i + 1
    for j in range(open_i + 1, close_i):
        t = toks[j].text
        if t == "(":
            depth += 1
        elif t == ")":
            depth -= 1
        elif t == "," and depth == 0:
            out.append((start, j))
            start = j + 1
    out.append((start, close_i))
    return out


def _text(toks: list[Tok], a: int, b: int) -> str:
    return "".join(t.text for t in toks[a:b])


@dataclass
class Pieces:
    """A text rewritten piece by piece, with where each piece came from: (position in the
    original, whether the piece is the original text itself). Positions in the rewritten text
    map back, so the parser's place in what it was given is the place in what the user typed."""

    source: str = ""
    out: list[str] = field(default_factory=list)
    origin: list[tuple[int, bool]] = field(default_factory=list)

    def add(self, text: str, pos: int, same: bool) -> None:
        self.out.append(text)
        self.origin.append((pos, same))

    def drop_from(self, k: int) -> None:
        del self.out[k:], self.origin[k:]

    def text(self) -> str:
        return "".join(self.out)

    def back(self, p: int) -> tuple[int, bool]:
        """Position p of the rewritten text -> (position in the original, exact)."""
        starts, n = [], 0
        for piece in self.out:
            starts.append(n)
            n += len(piece)
        if not starts:
            return p, True
        if p >= n:  # past the end (the parser's closing ';')
            pos, same = self.origin[-1]
            return pos + (len(self.out[-1]) if same else 1) + (p - n), same
        k = bisect.bisect_right(starts, p) - 1
        pos, same = self.origin[k]
        return (pos + p - starts[k], True) if same else (pos, False)


# -- before queryparser ----------------------------------------------------------------------


def shim(adql: str, pieces: Pieces | None = None) -> tuple[str, list[str]]:
    """The ADQL with what queryparser cannot parse hidden; the hidden pieces by number (CAST
    target types, whole CASE expressions).
    `pieces` gets where each piece of the result came from."""
    toks = tokens(adql)
    casts: list[str] = []
    out = pieces if pieces is not None else Pieces(adql)
    i = 0
    while i < len(toks):
        t = toks[i]
        nxt = _significant(toks, i)
        is_call = t.kind == "name" and nxt < len(toks) and toks[nxt].text == "("
        if t.kind == "name" and re.fullmatch(PLACEHOLDER + r"ca(se|st)_\d+", t.text.lower()):  # our own names
            raise StarboxError(f"Error: {t.text}() is not an ADQL function (column {t.pos + 1})")
        if t.kind == "comment":
            out.add(" ", t.pos, False)
        elif t.kind == "hex":
            out.add(str(int(t.text, 16)), t.pos, False)  # PostgreSQL 15 would read 0x10 as 0 AS x10
        elif t.kind == "name" and t.upper == "CASE" and not is_call:
            # queryparser has no CASE; the expression is SQL as ADQL writes it, so it is hidden
            # whole behind a placeholder call and put back as it was (its functions are
            # checked with the rest, after translation).
            end = _case_end(toks, i)
            casts.append("".join(_case_token(k) for k in toks[i : end + 1]))
            out.add(f"{PLACEHOLDER}case_{len(casts) - 1}()", t.pos, False)
            i = end + 1
            continue
        elif is_call and t.upper == "IN_UNIT":
            close = _close(toks, nxt)
            out.add(_in_unit(toks, i, nxt, close), t.pos, False)
            i = close + 1
            continue
        elif is_call and t.upper in HIDDEN_FUNCTIONS:
            out.add(PLACEHOLDER + t.text.lower(), t.pos, False)
        elif is_call and t.upper == "CAST":
            close = _close(toks, nxt)
            body = _text(toks, nxt + 1, close)
            m = re.match(r"(?is)^(.*)\s+AS\s+([^()]+(?:\(\s*\d+\s*\))?)\s*$", body)
            if not m:
                raise StarboxError(f"Error: ADQL syntax error at column {t.pos + 1}: CAST needs (value AS type)")
            if not CAST_TYPES.match(m.group(2).strip()):
                raise StarboxError(
                    f"Error: CAST to {m.group(2).strip()} is not supported (column {t.pos + 1}); "
                    "use SMALLINT, INTEGER, BIGINT, REAL, DOUBLE PRECISION, CHAR(n), VARCHAR(n) or TIMESTAMP"
                )
            casts.append(m.group(2).strip())
            inner, _ = shim(m.group(1))
            out.add(f"{PLACEHOLDER}cast_{len(casts) - 1}({inner})", t.pos, False)
            i = close + 1
            continue
        elif is_call and t.upper == "CIRCLE":
            close = _close(toks, nxt)
            args = _args(toks, nxt, close)
            first = toks[_significant(toks, args[0][0] - 1)]
            if len(args) == 3 and first.upper != "POINT" and first.kind != "string":
                # CIRCLE(ra, dec, r): queryparser wants the centre as POINT(ra, dec).
                a, b, r = (shim(_text(toks, s, e))[0] for s, e in args)
                out.add(f"CIRCLE(POINT({a}, {b}), {r})", t.pos, False)
                i = close + 1
                continue
            out.add(t.text, t.pos, True)
        elif is_call and t.upper == "POLYGON":
            close = _close(toks, nxt)
            flat = _flatten_polygon(toks, nxt, close)
            if flat is not None:
                out.add(flat, t.pos, False)
                i = close + 1
                continue
            out.add(t.text, t.pos, True)
        else:
            out.add(t.text, t.pos, True)
        i += 1
    return out.text(), casts


def _case_token(t: Tok) -> str:
    """A token of a hidden CASE as PostgreSQL must see it: what shim and unshim do elsewhere."""
    if t.kind == "comment":
        return " "
    if t.kind == "hex":
        return str(int(t.text, 16))
    if t.kind == "other" and t.text == "^":
        return "#"  # bitwise XOR (see unshim)
    return t.text


def _in_unit(toks: list[Tok], i: int, nxt: int, close: int) -> str:
    """IN_UNIT(column, 'unit') -> (column * factor), the factor from the column's unit."""
    args = _args(toks, nxt, close)
    if len(args) != 2:
        raise StarboxError(f"Error: IN_UNIT takes (column, 'unit') (column {toks[i].pos + 1})")
    (a, b), (c, d) = args
    ref = [k for k in toks[a:b] if k.kind not in ("ws", "comment")]
    target = [k for k in toks[c:d] if k.kind not in ("ws", "comment")]
    names = [_ident(k) for k in ref[::2]]
    if not (
        ref
        and all(k.kind in ("name", "quoted") for k in ref[::2])
        and all(k.text == "." for k in ref[1::2])
        and len(ref) % 2 == 1
        and len(names) <= 3
    ):
        raise StarboxError(
            f"Error: IN_UNIT takes a column as its first argument (column {toks[i].pos + 1}), not an expression"
        )
    if len(target) != 1 or target[0].kind != "string":
        raise StarboxError(f"Error: IN_UNIT takes the unit as a string, e.g. 'arcsec' (column {toks[i].pos + 1})")
    source = units.column_unit(names, _query_tables(toks))
    scale = units.factor(source, target[0].text[1:-1].replace("''", "'"))
    return f"({_text(toks, a, b).strip()} * {scale:.15g})"


def _query_tables(toks: list[Tok]) -> dict[str, str]:
    """The catalog tables a SELECT names (schema.table), by their names and their aliases."""
    known = units.catalog_units()
    sig = [k for k in toks if k.kind not in ("ws", "comment")]
    found: dict[str, str] = {}
    for j in range(len(sig) - 2):
        if sig[j + 1].text != "." or (j > 0 and sig[j - 1].text == "."):
            continue
        table = f"{_ident(sig[j])}.{_ident(sig[j + 2])}"
        if table not in known:
            continue
        found[table] = found[_ident(sig[j + 2])] = table
        k = j + 3
        if k < len(sig) and sig[k].upper == "AS":
            k += 1
        if k < len(sig) and sig[k].kind in ("name", "quoted") and sig[k].upper not in _NOT_ALIASES:
            found[_ident(sig[k])] = table
    return found


_NOT_ALIASES = {
    "WHERE",
    "JOIN",
    "INNER",
    "LEFT",
    "RIGHT",
    "FULL",
    "OUTER",
    "CROSS",
    "NATURAL",
    "ON",
    "GROUP",
    "ORDER",
    "HAVING",
    "UNION",
    "INTERSECT",
    "EXCEPT",
    "OFFSET",
    "USING",
}


def _case_end(toks: list[Tok], i: int) -> int:
    """The END that closes the CASE at toks[i] (CASEs nest)."""
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].kind == "name" and toks[j].upper == "CASE":
            depth += 1
        elif toks[j].kind == "name" and toks[j].upper == "END":
            depth -= 1
            if depth == 0:
                return j
    raise StarboxError(f"Error: ADQL syntax error at column {toks[i].pos + 1}: CASE without its END")


def _flatten_polygon(toks: list[Tok], open_i: int, close_i: int) -> str | None:
    """POLYGON(POINT(a, b), POINT(c, d), ...) -> POLYGON(a, b, c, d, ...), which queryparser reads."""
    coords = []
    for s, e in _args(toks, open_i, close_i):
        k = _significant(toks, s - 1)
        if toks[k].upper != "POINT":
            if toks[k].kind == "string" and not coords:
                continue  # the coordinate system of ADQL 2.0
            return None
        p_open = _significant(toks, k)
        inner = [_text(toks, a, b).strip() for a, b in _args(toks, p_open, _close(toks, p_open))]
        coords += inner[-2:]
    return "POLYGON(" + ", ".join(coords) + ")"


# -- after queryparser -----------------------------------------------------------------------


def unshim(sql: str, casts: list[str]) -> str:
    toks = tokens(sql)
    out: list[str] = []
    pending: dict[int, str] = {}  # index of a ')' -> text to put before it
    skip_to = -1
    for i, t in enumerate(toks):
        if i < skip_to:
            continue
        if i in pending:
            out.append(pending.pop(i))
        if t.kind == "name" and t.text.lower().startswith(PLACEHOLDER):
            name = t.text[len(PLACEHOLDER) :].lower()
            if name.startswith("cast_"):
                nxt = _significant(toks, i)
                pending[_close(toks, nxt)] = f" AS {casts[int(name[5:])]}"
                out.append("CAST")
            elif name.startswith("case_"):
                out.append(f"({casts[int(name[5:])]})")
                skip_to = _close(toks, _significant(toks, i)) + 1  # its empty ()
            else:
                out.append(name)
        elif t.kind == "other" and t.text == "^":
            out.append("#")  # ADQL 2.1's bitwise XOR; PostgreSQL's ^ is a power
        else:
            out.append(t.text)
    return "".join(out)


def upload_table(name: str) -> str:
    """The SQL name of an uploaded table (a CTE of the query; see upload.py)."""
    return f"tap_upload__{name.lower()}"


def _ident(t: Tok) -> str:
    return t.text[1:-1].replace('""', '"') if t.kind == "quoted" else t.text.lower()


def rename(sql: str, user: User) -> tuple[str, set[str]]:
    """`mydb.t` -> the user's MyDB schema; `TAP_UPLOAD.t` -> the uploaded table. Returns the
    SQL and the names of the uploaded tables it uses."""
    toks = tokens(sql)
    used: set[str] = set()
    out: list[str] = []
    skip_to = -1
    for i, t in enumerate(toks):
        if i < skip_to:
            continue
        dot = _significant(toks, i)
        prev = _significant(toks, i, -1)
        qualifier = (
            t.kind in ("name", "quoted")
            and dot < len(toks)
            and toks[dot].text == "."
            and not (prev >= 0 and toks[prev].text == ".")
        )
        if qualifier and _ident(t) == "mydb":
            if user.anonymous:
                raise Unauthorized(
                    "Error: mydb tables need a logged-in user: send your token "
                    "(X-DL-AuthToken or Authorization: Bearer)"
                )
            out.append(user.schema)
            continue
        if qualifier and _ident(t) == "tap_upload":
            name_i = _significant(toks, dot)
            name = _ident(toks[name_i])
            used.add(name)
            out.append(upload_table(name))
            skip_to = name_i + 1
            continue
        out.append(t.text)
    return "".join(out), used


def _translate(adql: str, user: User, original: Pieces | None = None) -> str:
    """One SELECT -> PostgreSQL: one translation. A syntax error names its place in the user's
    text: positions map back through the shim and through `original` (how `adql` was made
    from what the user typed, when it was), never by parsing again."""
    pieces = Pieces(adql)
    shimmed, casts = shim(adql, pieces)
    try:
        prepared = prepare(user, adql=shimmed)
    except adql_translate.AdqlSyntaxError as exc:
        raise _located(exc, shimmed, pieces, original) from None
    if not prepared.is_query:
        raise StarboxError("Error: only SELECT queries are ADQL")
    return unshim(prepared.sql, casts)


def _located(
    exc: adql_translate.AdqlSyntaxError, shimmed: str, pieces: Pieces, original: Pieces | None
) -> adql_translate.AdqlSyntaxError:
    """The parser's errors with their places in the user's text."""
    text = original.source if original is not None else pieces.source
    errors = []
    for line, col, tok in exc.errors:
        p = sum(len(x) + 1 for x in shimmed.split("\n")[: max(line, 1) - 1]) + col
        p, same = pieces.back(p)
        if original is not None:
            p, exact = original.back(p)
            same = same and exact
        if not same and tok not in ("<EOF>", ";"):  # a rewritten piece: name what the user wrote there
            tok = next((t.text for t in tokens(text) if t.pos == p), tok)
        errors.append((text.count("\n", 0, p) + 1, p - (text.rfind("\n", 0, p) + 1), tok))
    return adql_translate.AdqlSyntaxError(errors)


# queryparser's ANTLR parser takes 50-150 ms per query in Python. Queries that differ only in
# their numbers (a cone moved by a slider, a new magnitude cut) share one translation: numbers
# become sentinels, the translated template is cached, the numbers go back in. When a number
# does not come through unchanged (BOX computes its corners, 1.0/3600 is folded), the query is
# translated as it is.
SENTINEL = 987654320000
_SENTINEL_RE = re.compile(r"(?<![\w.])9876543(\d{5})(\.5|\.0)?(?![\d.])")
_templates: "OrderedDict[tuple[str, str | None], str]" = OrderedDict()
_templates_lock = threading.Lock()
TEMPLATES = 512


_UNARY_AFTER = {
    "(",
    ",",
    "=",
    "<",
    ">",
    "<=",
    ">=",
    "<>",
    "!=",
    "+",
    "-",
    "*",
    "/",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "SELECT",
    "WHERE",
    "ON",
    "TOP",
    "IN",
    "HAVING",
}


def _template(adql: str) -> tuple[str, list[str], Pieces] | None:
    """The query with its numbers as sentinels, the numbers, and where the pieces came from."""
    if "9876543" in adql:
        return None
    toks = tokens(adql)
    out = Pieces(adql)
    numbers: list[str] = []
    for i, t in enumerate(toks):
        if t.kind == "number" and t.text not in ("0", "1"):  # 1 = CONTAINS(...) must stay as it is
            literal, pos = t.text, t.pos
            minus = _significant(toks, i, -1)
            if minus >= 0 and toks[minus].text == "-":
                before = _significant(toks, minus, -1)
                if before < 0 or toks[before].upper in _UNARY_AFTER:  # a negative number, not a subtraction
                    literal, pos = "-" + literal, toks[minus].pos
                    out.drop_from(len(out.out) - (i - minus))  # drop the '-' (and blanks after it) already copied
            fraction = ".5" if any(c in t.text for c in ".eE") else ""
            out.add(f"{SENTINEL + len(numbers)}{fraction}", pos, False)
            numbers.append(literal)
        else:
            out.add(t.text, t.pos, True)
    return out.text(), numbers, out


def _fill(sql: str, numbers: list[str]) -> str | None:
    seen = [0] * len(numbers)

    def put(m: re.Match) -> str:
        k = int(m.group(1)) - (SENTINEL - 987654300000)
        if not 0 <= k < len(numbers):
            raise ValueError(k)
        seen[k] += 1
        return numbers[k]

    try:
        out = _SENTINEL_RE.sub(put, sql)
    except ValueError:
        return None
    return out if all(n == 1 for n in seen) and "9876543" not in out else None


def translate(adql: str, user: User) -> tuple[str, set[str]]:
    """ADQL -> PostgreSQL, with MyDB and upload names resolved. Returns (sql, uploads used)."""
    if not adql or not adql.strip():
        raise StarboxError("Error: no QUERY given: pass the ADQL query as QUERY=...")
    adql_translate.check_size(adql)  # before anything reads the text (tokenizing included)
    with adql_translate.size_checked():  # the rewritten parts may be longer: the user's text counts
        sql = _query(adql, user)
    adql_translate.check_functions(sql)  # the functions as they run, placeholders restored
    return rename(sql, user)


def _select(adql: str, user: User) -> str:
    """One SELECT -> PostgreSQL, through the cache of translations: one translation at most
    for a new query, none for a known one (starbox.adql_translate remembers failures too)."""
    templated = _template(adql)
    if templated is None or templated[0] == adql:
        return _translate(adql, user)
    text, numbers, pieces = templated
    key = (text, user.schema)
    with _templates_lock:
        cached = _templates.get(key)
        if cached is not None:
            _templates.move_to_end(key)
    if cached is None:
        try:
            cached = _translate(text, user, pieces)
        except adql_translate.TranslationFailed:
            cached = ""  # queryparser choked, perhaps on a number: the real text below says
        # Anything else (a syntax error, the time limit, ...) the real text would meet again.
        with _templates_lock:
            _templates[key] = cached
            while len(_templates) > TEMPLATES:
                _templates.popitem(last=False)
    sql = _fill(cached, numbers) if cached else None
    return sql if sql is not None else _translate(adql, user)


# -- ADQL 2.1's WITH and set operators ---------------------------------------------------------
# queryparser translates one SELECT at a time. A query with a WITH clause, or SELECTs joined by
# UNION, INTERSECT or EXCEPT, is cut into its SELECTs at the top level; each is translated on its
# own and the SQL put together again, every SELECT in parentheses (PostgreSQL wants them around a
# SELECT with a LIMIT, which is what TOP becomes). An ORDER BY or OFFSET after the last SELECT of
# a set operation sorts the whole result, as in SQL. Each part keeps its place in the text (what
# comes before it is blanked out), so the parser's line and column point into the user's query.

SET_OPERATORS = {"UNION", "INTERSECT", "EXCEPT"}
_TAIL = re.compile(r"""(?ix)^ORDER\s+BY\s+
    (?:[A-Za-z_]\w*|"[^"]+"|\d+)(?:\s+(?:ASC|DESC))?
    (?:\s*,\s*(?:[A-Za-z_]\w*|"[^"]+"|\d+)(?:\s+(?:ASC|DESC))?)*
    (?:\s+OFFSET\s+\d+)?$|^OFFSET\s+\d+$""")


def _part(adql: str, start: int, end: int | None = None) -> str:
    """adql[start:end], with everything before it blanked out (line breaks kept)."""
    return re.sub(r"[^\n]", " ", adql[:start]) + adql[start:end]


def _query(adql: str, user: User) -> str:
    toks = [t for t in tokens(adql) if t.kind not in ("ws", "comment")]
    if not toks:
        raise StarboxError("Error: ADQL syntax error: the query is empty")
    if toks[0].text == "(" and _close(toks, 0) == len(toks) - 1:  # (SELECT ...)
        return _query(_part(adql, toks[0].pos + 1, toks[-1].pos), user)
    start, ctes = _with_clause(adql, toks) if toks[0].upper == "WITH" else (0, [])
    selects, ops, tail = _set_operands(adql, toks, start)
    if not ctes and len(selects) == 1:
        return _select(adql, user)
    sql = ""
    if ctes:
        sql = "WITH " + ",\n".join(f"{name} AS (\n{_query(body, user)}\n)" for name, body in ctes) + "\n"
    if len(selects) == 1:
        return sql + _query(selects[0], user)
    sql += f"({_query(selects[0], user)})"
    for op, select in zip(ops, selects[1:]):
        sql += f"\n{op}\n({_query(select, user)})"
    return sql + (f"\n{tail}" if tail else "")


def _with_clause(adql: str, toks: list[Tok]) -> tuple[int, list[tuple[str, str]]]:
    """WITH name [(columns)] AS (query), ... -> the index of the main query's first token, and
    [(the name with its column list, the ADQL of its query)]."""
    ctes: list[tuple[str, str]] = []
    i = 1
    while True:
        if i < len(toks) and toks[i].upper == "RECURSIVE":
            raise StarboxError(f"Error: WITH RECURSIVE is not part of ADQL (column {toks[i].pos + 1})")
        if i >= len(toks) or toks[i].kind not in ("name", "quoted"):
            raise _with_error(toks, i)
        name, i = toks[i].text, i + 1
        if i < len(toks) and toks[i].text == "(":
            close = _close(toks, i)
            name += adql[toks[i].pos : toks[close].pos + 1]
            i = close + 1
        if i + 1 >= len(toks) or toks[i].upper != "AS" or toks[i + 1].text != "(":
            raise _with_error(toks, i)
        close = _close(toks, i + 1)
        ctes.append((name, _part(adql, toks[i + 1].pos + 1, toks[close].pos)))
        i = close + 1
        if i < len(toks) and toks[i].text == ",":
            i += 1
            continue
        if i >= len(toks):
            raise StarboxError("Error: ADQL syntax error at the end: a SELECT must follow the WITH clause")
        return i, ctes


def _with_error(toks: list[Tok], i: int) -> StarboxError:
    where = f"at column {toks[i].pos + 1}" if i < len(toks) else "at the end"
    return StarboxError(f"Error: ADQL syntax error {where}: WITH needs name AS (SELECT ...)")


def _set_operands(adql: str, toks: list[Tok], start: int) -> tuple[list[str], list[str], str]:
    """The SELECTs joined by set operators at the top level from token `start`, the operators
    between them ("UNION ALL", ...), and an ORDER BY / OFFSET after the last one."""
    cuts: list[tuple[int, int, str]] = []  # (first token of the operator, first token after, operator)
    depth = 0
    for i in range(start, len(toks)):
        t = toks[i]
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.upper in SET_OPERATORS:
            op, after = t.upper, i + 1
            if after < len(toks) and toks[after].upper in ("ALL", "DISTINCT"):
                op, after = f"{op} {toks[after].upper}", after + 1
            if after >= len(toks):
                raise StarboxError(f"Error: ADQL syntax error at the end: a SELECT must follow {op}")
            cuts.append((i, after, op))
    bounds = [start] + [after for _, after, _ in cuts]
    ends = [i for i, _, _ in cuts] + [len(toks)]
    selects = [_part(adql, toks[a].pos, toks[b].pos if b < len(toks) else None) for a, b in zip(bounds, ends)]
    tail = ""
    if cuts:
        selects[-1], tail = _split_tail(adql, toks, bounds[-1])
    return selects, [op for _, _, op in cuts], tail


def _split_tail(adql: str, toks: list[Tok], start: int) -> tuple[str, str]:
    """The last SELECT of a set operation, and the ORDER BY / OFFSET after it (for the whole)."""
    depth = 0
    for i in range(start, len(toks)):
        t = toks[i]
        depth += (t.text == "(") - (t.text == ")")
        if depth == 0 and (
            t.upper == "OFFSET" or (t.upper == "ORDER" and i + 1 < len(toks) and toks[i + 1].upper == "BY")
        ):
            tail = adql[t.pos :].strip()
            if not _TAIL.match(tail):
                raise StarboxError(
                    f"Error: ADQL syntax error at column {t.pos + 1}: after UNION, INTERSECT "
                    "or EXCEPT, ORDER BY takes output column names or numbers (and OFFSET a "
                    "number); to sort on anything else, wrap the set operation in "
                    "SELECT * FROM (...) AS t"
                )
            return _part(adql, toks[start].pos, t.pos), tail
    return _part(adql, toks[start].pos), ""
