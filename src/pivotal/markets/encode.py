"""JSON text of a large market's result, built from columns.

A market of 10^6 agents has a result document of about 270 MB: eight ``name -> amount`` maps
and the input. Building those as 10^6-entry dictionaries (and the input as 10^6 small ones) and
encoding them took more time than solving the market. Here the maps are written from the
outcome's columns (:mod:`pivotal.markets.amounts`): each map's values by one
:func:`~pydantic_core.to_json` call on the column's list, the names quoted once, keys and values
interleaved byte by byte; the input from the table's columns, one ``%`` of a template per
entry. The text is the same, byte for byte, as ``to_json`` of the document with dictionaries
(the tests compare both).

:func:`encode` writes a document whose large values are :class:`Fragment` objects (pre-encoded
text), the same as :func:`~pydantic_core.to_json` writes the document with those values.
:class:`InputTexts` computes the input's hash and text on the other core while the market is
solved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic_core import to_json

from pivotal.arrays import FloatArray, IntArray
from pivotal.markets.amounts import AmountColumn, LabelColumn, as_dict
from pivotal.markets.forked import Forked
from pivotal.markets.result import market_result
from pivotal.markets.table import LINEAR, PIECEWISE, QUADRATIC, CurveTable

if TYPE_CHECKING:
    from pivotal.markets.clarke import MarketOutcome
    from pivotal.markets.market import Market
    from pivotal.markets.misreports import WithholdingResult

_SEP = b"\x00"  # never in encoded JSON text (escaped as \u0000)
_NEEDS_ESCAPE = re.compile('["\\\\\x01-\x1f]')


class Fragment:
    """A value of a document given as its encoded JSON text."""

    __slots__ = ("text",)

    def __init__(self, text: bytes) -> None:
        self.text = text


def encode(value: Any) -> bytes:
    """:func:`pydantic_core.to_json` of ``value`` (compact), with each :class:`Fragment` written
    as its text. Dictionaries are written key by key (string keys); anything else by
    ``to_json``."""
    if isinstance(value, Fragment):
        return value.text
    if type(value) is dict and all(type(k) is str for k in value):
        items = [to_json(k) + b":" + encode(v) for k, v in value.items()]
        return b"{" + b",".join(items) + b"}"
    return to_json(value)


def names_json(names: list[str]) -> list[bytes]:
    """Each name as a JSON string, as :func:`pydantic_core.to_json` writes it (UTF-8)."""
    if not names:
        return []
    return "\x00".join(quoted_names(names)).encode("utf-8").split(_SEP)


_COMMA = ord(",")


class ResultEncoder:
    """Encodes the per-agent maps of one market's result from their columns.

    The names are quoted once (``"name":`` for every agent, one buffer); each map's values are
    formatted by one :func:`~pydantic_core.to_json` call on the column's list, and the two
    texts are interleaved byte by byte with a mask (no Python object per agent).
    """

    def __init__(self, names: list[str]) -> None:
        self.names = names
        keys = names_json(names)
        self._keys = np.frombuffer(b":".join(keys) + b":", dtype=np.uint8)
        self._key_len = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys)) + 1

    def __call__(self, mapping: Mapping[str, Any]) -> Any:
        """A :data:`pivotal.markets.clarke.PerAgent`: a column as a :class:`Fragment`."""
        if isinstance(mapping, AmountColumn) and mapping.names is self.names:
            return Fragment(self.amounts(mapping.amounts))
        if isinstance(mapping, LabelColumn) and mapping.names is self.names:
            return Fragment(self.labels(mapping.codes, mapping.labels))
        return as_dict(mapping)

    def amounts(self, x: FloatArray) -> bytes:
        """``{name: x[i]}`` as :func:`~pydantic_core.to_json` writes it."""
        if x.size == 0:
            return b"{}"
        text = to_json(x.tolist())
        values = np.frombuffer(text, dtype=np.uint8)[1:].copy()
        values[-1] = _COMMA  # "]" -> ",": every value ends with a comma
        ends = np.flatnonzero(values == _COMMA)
        return self._interleave(values, np.diff(ends, prepend=-1))

    def labels(self, codes: IntArray, labels: tuple[Any, ...]) -> bytes:
        """``{name: labels[codes[i]]}`` as :func:`~pydantic_core.to_json` writes it."""
        if codes.size == 0:
            return b"{}"
        texts = [to_json(label) + b"," for label in labels]
        values = np.frombuffer(b"".join(map(texts.__getitem__, codes.tolist())), np.uint8)
        lengths = np.array([len(t) for t in texts], dtype=np.int64)[codes]
        return self._interleave(values, lengths)

    def _interleave(self, values: npt.NDArray[np.uint8], value_len: IntArray) -> bytes:
        """``{`` + key 0 + value 0 + key 1 + value 1 ... with the last value's comma -> ``}``."""
        n = self._key_len.size
        if value_len.size != n:
            raise ValueError(f"{value_len.size} values for {n} names")
        runs = np.empty(2 * n, dtype=np.int64)
        runs[0::2] = self._key_len
        runs[1::2] = value_len
        is_key = np.repeat(np.tile(np.array([True, False]), n), runs)
        out = np.empty(is_key.size + 1, dtype=np.uint8)
        body = out[1:]
        body[is_key] = self._keys
        body[~is_key] = values
        out[0] = ord("{")
        out[-1] = ord("}")
        return out.tobytes()


# ------------------------------------------------------------------------- the market's input
# Entry templates by role (producer: True) and curve kind. Every template takes the same
# arguments in the same order; the ones its kind does not use are empty strings.
_Entry = tuple[tuple[str, ...], dict[int, str]]
_ENTRIES: dict[bool, _Entry] = {
    True: (
        ("name", "a", "b", "points", "capacity"),
        {
            LINEAR: '{"name":%s,"cost":{"kind":"linear","a":%s%s%s},"capacity":%s}',
            QUADRATIC: '{"name":%s,"cost":{"kind":"quadratic","a":%s,"b":%s%s},"capacity":%s}',
            PIECEWISE: '{"name":%s,"cost":{"kind":"piecewise_linear","points":[%s%s%s]},'
            '"capacity":%s}',
        },
    ),
    False: (
        ("name", "a", "b", "points", "capacity"),
        {
            LINEAR: '{"name":%s,"benefit":{"kind":"linear","a":%s%s%s},"capacity":%s}',
            QUADRATIC: '{"name":%s,"benefit":{"kind":"quadratic","a":%s,"b":%s%s},"capacity":%s}',
            PIECEWISE: '{"name":%s,"benefit":{"kind":"piecewise_linear","points":[%s%s%s]},'
            '"capacity":%s}',
        },
    ),
}


def floats_json(x: FloatArray) -> list[str]:
    """Each float as :func:`pydantic_core.to_json` writes it."""
    return [] if x.size == 0 else to_json(x.tolist()).decode("ascii")[1:-1].split(",")


def quoted_names(names: list[str]) -> list[str]:
    """Each name as a JSON string, as :func:`pydantic_core.to_json` writes it (once encoded
    as UTF-8)."""
    joined = "\x00".join(names)
    if _NEEDS_ESCAPE.search(joined) is not None or joined.count("\x00") != len(names) - 1:
        return [to_json(name).decode("utf-8") for name in names]
    return ('"' + '"\x00"'.join(names) + '"').split("\x00") if names else []


def _blank(texts: list[str], keep: npt.NDArray[np.bool_]) -> list[str]:
    """``texts`` with the items outside ``keep`` replaced by empty strings."""
    array = np.array(texts, dtype=object)
    array[~keep] = ""
    blanked: list[str] = array.tolist()
    return blanked


def _points(table: CurveTable) -> list[str]:
    """Per agent, the points of its piecewise-linear curve as ``[q,v],[q,v]...`` (or empty)."""
    pwl = np.flatnonzero(table.kind == PIECEWISE)
    per_agent = np.full(table.n, "", dtype=object)
    m = table.pq.size
    if pwl.size == 0 or m == 0:
        empty: list[str] = per_agent.tolist()
        return empty
    last = np.zeros(m, dtype=np.int64)
    last[table.offsets[pwl + 1] - 1] = 1
    template: list[str] = ["[%s,%s]"] * (2 * m)
    template[1::2] = [(",", "\x00")[x] for x in last.tolist()]
    args: list[str] = [""] * (2 * m)
    args[0::2] = floats_json(table.pq)
    args[1::2] = floats_json(table.pv)
    text = "".join(template[:-1]) % tuple(args)
    per_agent[pwl] = np.array(text.split("\x00"), dtype=object)
    texts: list[str] = per_agent.tolist()
    return texts


def market_json(table: CurveTable) -> bytes:
    """The market's input document (:meth:`pivotal.markets.market.Market.to_dict`) as
    :func:`pydantic_core.to_json` writes it (compact), without a dictionary per agent: every
    number is formatted once per column, and each side's entries by one ``%`` of a template
    per entry. (The canonical form that is hashed is
    :meth:`pivotal.markets.table.CurveTable.canonical_json`.)"""
    kind = table.kind
    columns = {
        "name": quoted_names(table.names),
        "a": _blank(floats_json(table.a), kind != PIECEWISE),
        "b": _blank(floats_json(table.b), kind == QUADRATIC),
        "points": _points(table),
        "capacity": floats_json(table.capacity),
    }
    sides: dict[bool, str] = {}
    for producer in (True, False):
        rows_of_side = np.flatnonzero((table.sign > 0) == producer)
        order, templates = _ENTRIES[producer]
        m = rows_of_side.size
        args: list[str] = [""] * (len(order) * m)
        for j, key in enumerate(order):
            args[j :: len(order)] = np.array(columns[key], dtype=object)[rows_of_side].tolist()
        template = ",".join(map(templates.__getitem__, kind[rows_of_side].tolist()))
        sides[producer] = template % tuple(args)
    text = '{"producers":[' + sides[True] + '],"buyers":[' + sides[False] + "]}"
    return text.encode("utf-8")


def market_result_json(
    market: Market,
    outcome: MarketOutcome,
    withholding: WithholdingResult | None = None,
    *,
    source: dict[str, str] | None = None,
    texts: InputTexts | None = None,
) -> bytes:
    """``to_json(doc)`` of the result document ``doc``
    (:func:`pivotal.markets.result.market_result`, then ``source`` when given), built from the
    columns (compact, no indentation); the input's text from ``texts`` when given."""
    given = None
    if texts is not None:
        given = Fragment(texts.json())
    elif market.closed_form:
        given = Fragment(market_json(market.table))
    encoder = ResultEncoder(market.names)
    doc = market_result(market, outcome, withholding, per_agent=encoder, given=given)
    if source is not None:
        doc["source"] = source
    return encode(doc)


class InputTexts:
    """The input's canonical hash and its JSON text (the result's ``input``), computed by a
    forked child (:class:`pivotal.markets.forked.Forked`) on the other core while this process
    solves the market; the market takes its hash from here. Closed-form markets only."""

    def __init__(self, market: Market, *, fork: bool = True) -> None:
        table = market.table

        def work() -> list[bytes]:
            return [market.sha256.encode("ascii"), market_json(table)]

        self._job = Forked(work, fork=fork)
        self._parts: list[bytes] | None = None
        if self._job.forked:
            market.hash_from(self.sha256)

    def _result(self) -> list[bytes]:
        if self._parts is None:
            self._parts = self._job.result()
        return self._parts

    def sha256(self) -> str:
        """The input's SHA-256 (as :attr:`pivotal.markets.market.Market.sha256`)."""
        return self._result()[0].decode("ascii")

    def json(self) -> bytes:
        """The input as :func:`market_json` (``"json"``) writes it."""
        return self._result()[1]

    def cancel(self) -> None:
        """Stop the child if its work is no longer wanted."""
        self._job.cancel()


__all__ = [
    "Fragment",
    "InputTexts",
    "ResultEncoder",
    "encode",
    "floats_json",
    "market_json",
    "market_result_json",
    "quoted_names",
    "names_json",
]
