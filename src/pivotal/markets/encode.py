"""JSON text of a large market and its result, built from columns.

A market of 10^6 agents has a result document of about 270 MB: eight ``name -> amount`` maps
and the input. Building those as 10^6-entry dictionaries (and the input as 10^6 small ones) and
encoding them took more time than solving the market. Here each map's text is assembled from
its column: every float of a column is formatted by one call of the encoder that formats the
whole document (pydantic-core's :func:`~pydantic_core.to_json` for the result, the standard
library's ``repr``, which is what :func:`json.dumps` writes, for the canonical input whose hash
the result records), every name is quoted once, and the pieces are joined in one pass (list
slices and :meth:`bytes.join`, no Python code per agent). The text is the same, byte for byte,
as the generic encoder's on the dictionaries (the tests compare both).

:func:`encode` writes a document whose large values are :class:`Fragment` objects (pre-encoded
text), the same as :func:`~pydantic_core.to_json` writes the document with those values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import numpy.typing as npt
from pydantic_core import to_json

from pivotal.arrays import FloatArray, IntArray
from pivotal.markets.amounts import AmountColumn, LabelColumn, as_dict
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


def concat(columns: Sequence[bytes | list[bytes]], n: int, sep: bytes) -> bytes:
    """Row ``i`` is the concatenation of every column's item ``i`` (a ``bytes`` column is the
    same in every row); the ``n`` rows joined with ``sep``."""
    if n == 0:
        return b""
    k = len(columns) + 1
    parts: list[bytes] = [sep] * (k * n)
    for j, column in enumerate(columns):
        if isinstance(column, bytes):
            parts[j::k] = [column] * n
        else:
            if len(column) != n:
                raise ValueError(f"column {j} has {len(column)} items, not {n}")
            parts[j::k] = column
    return b"".join(parts[:-1])


def rows(columns: Sequence[bytes | list[bytes]], n: int) -> list[bytes]:
    """The rows of :func:`concat` as separate texts (no item may contain a NUL byte)."""
    if n == 0:
        return []
    return concat(columns, n, _SEP).split(_SEP)


def floats_json(x: FloatArray) -> list[bytes]:
    """Each float as :func:`pydantic_core.to_json` writes it."""
    if x.size == 0:
        return []
    return to_json(x.tolist())[1:-1].split(b",")


def floats_repr(x: FloatArray) -> list[bytes]:
    """Each float as :func:`json.dumps` writes it (its ``repr``); ``ValueError`` for NaN or
    infinity, as ``json.dumps(..., allow_nan=False)``."""
    if x.size == 0:
        return []
    if not np.isfinite(x).all():
        raise ValueError("Out of range float values are not JSON compliant")
    return repr(x.tolist())[1:-1].encode("ascii").split(b", ")


def names_json(names: list[str]) -> list[bytes]:
    """Each name as a JSON string, as :func:`pydantic_core.to_json` writes it (UTF-8)."""
    if not names:
        return []
    joined = "\x00".join(names)
    if _NEEDS_ESCAPE.search(joined) is not None or joined.count("\x00") != len(names) - 1:
        return [to_json(name) for name in names]
    return rows([b'"', joined.encode("utf-8").split(_SEP), b'"'], len(names))


def names_ascii(names: list[str]) -> list[bytes]:
    """Each name as a JSON string, as :func:`json.dumps` writes it (ASCII, ``\\uXXXX``)."""
    return [s.encode("ascii") for s in map(encode_basestring_ascii, names)]


def map_json(keys: list[bytes], values: list[bytes]) -> bytes:
    """The JSON object ``{key: value}`` (``keys`` and ``values`` encoded, in order)."""
    return b"{" + concat([keys, b":", values], len(keys), b",") + b"}"


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
_CURVE_SLOTS: dict[str, dict[int, tuple[bytes, bytes, bytes]]] = {
    # kind: the texts around the first number (or points), and before and after the second
    "json": {
        LINEAR: (b'{"kind":"linear","a":', b"}", b""),
        QUADRATIC: (b'{"kind":"quadratic","a":', b',"b":', b"}"),
        PIECEWISE: (b'{"kind":"piecewise_linear","points":[', b"]}", b""),
    },
    "canonical": {
        LINEAR: (b'{"a":', b',"kind":"linear"}', b""),
        QUADRATIC: (b'{"a":', b',"b":', b',"kind":"quadratic"}'),
        PIECEWISE: (b'{"kind":"piecewise_linear","points":[', b"]}", b""),
    },
}


def _pick(kinds: list[int], by_kind: dict[int, bytes]) -> list[bytes]:
    """Per agent, the text of its curve kind (``b""`` for a kind not given)."""
    texts = [by_kind.get(k, b"") for k in range(max(LINEAR, QUADRATIC, PIECEWISE) + 1)]
    return list(map(texts.__getitem__, kinds))


def _objects(items: list[bytes]) -> npt.NDArray[np.object_]:
    return np.array(items, dtype=object)


def _put(items: list[bytes], at: IntArray, values: list[bytes] | bytes) -> list[bytes]:
    """``items`` with ``items[at[j]]`` replaced by ``values[j]`` (or by ``values``)."""
    array = _objects(items)
    array[at] = values if isinstance(values, bytes) else _objects(values)
    replaced: list[bytes] = array.tolist()
    return replaced


def _select(items: list[bytes], mask: npt.NDArray[np.bool_]) -> list[bytes]:
    selected: list[bytes] = _objects(items)[mask].tolist()
    return selected


def _points(table: CurveTable, number: Callable[[FloatArray], list[bytes]]) -> list[bytes]:
    """The points of each piecewise-linear curve, ``[q,v],[q,v],...``, in agent order."""
    m = table.pq.size
    first = np.zeros(m, dtype=np.int64)
    first[table.offsets[np.flatnonzero(table.kind == PIECEWISE)]] = 1
    lead = list(map((b",", _SEP).__getitem__, first.tolist()))
    lead[0] = b""
    text = concat([lead, b"[", number(table.pq), b",", number(table.pv), b"]"], m, b"")
    return text.split(_SEP)


def market_json(table: CurveTable, style: Literal["json", "canonical"]) -> bytes:
    """The market's input document (:meth:`pivotal.markets.market.Market.to_dict`) as JSON:
    ``style="json"`` as :func:`pydantic_core.to_json` writes it (compact), ``"canonical"`` as
    :func:`pivotal.results.canonical_json` (sorted keys, ``repr`` of each float, ASCII)."""
    canonical = style == "canonical"
    number = floats_repr if canonical else floats_json
    n = table.n
    names = names_ascii(table.names) if canonical else names_json(table.names)
    kinds = table.kind.tolist()
    slots = _CURVE_SLOTS[style]
    first = number(table.a)  # a, or the points of a piecewise curve
    pwl = np.flatnonzero(table.kind == PIECEWISE)
    if pwl.size:
        first = _put(first, pwl, _points(table, number))
    second = number(table.b)  # b of a quadratic curve
    other = np.flatnonzero(table.kind != QUADRATIC)
    if other.size:
        second = _put(second, other, b"")
    curves = rows(
        [
            _pick(kinds, {k: v[0] for k, v in slots.items()}),
            first,
            _pick(kinds, {k: v[1] for k, v in slots.items()}),
            second,
            _pick(kinds, {k: v[2] for k, v in slots.items()}),
        ],
        n,
    )
    cap = number(table.capacity)
    producer = table.sign > 0
    buyer = ~producer
    n_producers, n_buyers = int(producer.sum()), int(buyer.sum())
    if canonical:
        producers = concat(
            [b'{"capacity":', _select(cap, producer), b',"cost":', _select(curves, producer),
             b',"name":', _select(names, producer), b"}"],
            n_producers, b",",
        )  # fmt: skip
        buyers = concat(
            [b'{"benefit":', _select(curves, buyer), b',"capacity":', _select(cap, buyer),
             b',"name":', _select(names, buyer), b"}"],
            n_buyers, b",",
        )  # fmt: skip
        return b'{"buyers":[' + buyers + b'],"producers":[' + producers + b"]}"
    producers = concat(
        [b'{"name":', _select(names, producer), b',"cost":', _select(curves, producer),
         b',"capacity":', _select(cap, producer), b"}"],
        n_producers, b",",
    )  # fmt: skip
    buyers = concat(
        [b'{"name":', _select(names, buyer), b',"benefit":', _select(curves, buyer),
         b',"capacity":', _select(cap, buyer), b"}"],
        n_buyers, b",",
    )  # fmt: skip
    return b'{"producers":[' + producers + b'],"buyers":[' + buyers + b"]}"


def market_result_json(
    market: Market,
    outcome: MarketOutcome,
    withholding: WithholdingResult | None = None,
    *,
    source: dict[str, str] | None = None,
) -> bytes:
    """``to_json(doc)`` of the result document ``doc``
    (:func:`pivotal.markets.result.market_result`, then ``source`` when given), built from the
    columns (compact, no indentation)."""
    given = Fragment(market_json(market.table, "json")) if market.closed_form else None
    encoder = ResultEncoder(market.names)
    doc = market_result(market, outcome, withholding, per_agent=encoder, given=given)
    if source is not None:
        doc["source"] = source
    return encode(doc)


__all__ = [
    "Fragment",
    "ResultEncoder",
    "concat",
    "encode",
    "floats_json",
    "floats_repr",
    "market_json",
    "market_result_json",
    "names_ascii",
    "names_json",
    "rows",
]
