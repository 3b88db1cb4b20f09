"""Reading auctions from files: JSON bids, JSON or CSV valuation tables (CATS text: ``cats.py``).

JSON bids::

    {"items": ["A", "B"], "bids": [{"bidder": "1", "bundle": ["A", "B"], "value": 15}]}

JSON valuation table (a value per named bundle per bidder, as in the VCG tutorial)::

    {"items": ["A", "B"], "valuations": {"1": {"A": 5, "B": 4, "A+B": 15}}}

CSV valuation table: a ``bidder`` column, then one column per bundle named like ``A+B``; the
items are those named in the header, in order of first appearance. An empty cell means the bidder
does not bid on that bundle. When the header has single-item columns (``A``, ``B``, ...), they
list the items: a bundle naming any other item (``A+b`` for ``A+B``) is an error, and so are two
items whose names differ only in case.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, ValidationError

from pivotal.auctions.bids import Auction, parse_bundle_label
from pivotal.auctions.cats import auction_from_cats_text
from pivotal.errors import InputError, InvalidBidError
from pivotal.fileio import display_name, is_stdin, parse_json, read_text, require_kind

Number = StrictFloat


class BidIn(BaseModel):
    """One bid as written in a JSON file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    bidder: str | int
    bundle: list[str | int] = Field(min_length=1)
    value: Number


class BidsFile(BaseModel):
    """The JSON bids format."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    items: list[str | int] = Field(min_length=1)
    bids: list[BidIn]


class ValuationsFile(BaseModel):
    """The JSON valuation-table format."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    items: list[str | int] = Field(min_length=1)
    valuations: dict[str, dict[str, Number]]


_UNION_TAGS = {"str", "int", "float", "bool"}


def _describe(err: ValidationError) -> tuple[str, str]:
    first = err.errors()[0]
    parts = [p for p in first["loc"] if p not in _UNION_TAGS]
    loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
    msg = first["msg"]
    if first["type"] in {"float_type", "int_type"} or "number" in msg.lower():
        msg = f"expected a number, got {first.get('input')!r}"
    elif first["type"] == "too_short" and loc.endswith("bundle"):
        msg = "the bundle is empty; name at least one item"
    elif first["type"] == "extra_forbidden":
        msg = "unknown field"
    elif first["type"] == "missing":
        msg = "required field is missing"
    return loc or "(document)", msg


def auction_from_document(doc: Any, *, source: str = "input") -> Auction:
    """Validate a parsed JSON document (bids or valuations format) into an :class:`Auction`."""
    if not isinstance(doc, dict):
        raise InputError(f"{source}: expected a JSON object with 'items' and 'bids'")
    try:
        if "valuations" in doc:
            vf = ValuationsFile.model_validate(doc)
            return Auction.from_valuations(
                [str(i) for i in vf.items],
                {b: {k: float(v) for k, v in row.items()} for b, row in vf.valuations.items()},
            )
        bf = BidsFile.model_validate(doc)
    except ValidationError as err:
        loc, msg = _describe(err)
        raise InvalidBidError(f"{source}: {loc}: {msg}", field=loc) from None
    return Auction.from_bids(
        [str(i) for i in bf.items],
        [(str(b.bidder), [str(i) for i in b.bundle], b.value) for b in bf.bids],
    )


def _check_csv_items(
    labels: list[str], bundles: list[list[str]], items: list[str], source: str
) -> None:
    """Catch a mistyped item in a bundle column (``A+b`` for ``A+B``), which would otherwise
    silently add an item."""
    by_folded: dict[str, str] = {}
    for item in items:
        other = by_folded.setdefault(item.casefold(), item)
        if other != item:
            raise InvalidBidError(
                f"{source}: the CSV header names items {other!r} and {item!r}, which differ only "
                "in case; item names are case-sensitive: write one of them",
                field=item,
            )
    singles = {b[0] for b in bundles if len(b) == 1}
    if not singles:
        return
    for label, bundle in zip(labels, bundles, strict=True):
        unknown = [i for i in bundle if i not in singles]
        if unknown:
            raise InvalidBidError(
                f"{source}: CSV column {label!r} names item {unknown[0]!r}, which has no column of "
                f"its own (items: {', '.join(sorted(singles))}); fix the label, or add a "
                f"{unknown[0]!r} column (it may be left empty)",
                field=label,
            )


def auction_from_csv_text(text: str, *, source: str = "input") -> Auction:
    """Parse a CSV valuation table (``bidder`` column plus bundle columns like ``A+B``)."""
    reader = csv.reader(io.StringIO(text))
    rows = [r for r in reader if any(cell.strip() for cell in r)]
    if not rows:
        raise InputError(f"{source}: the CSV file is empty")
    header = [h.strip() for h in rows[0]]
    if not header or header[0].lower() != "bidder":
        raise InputError(f"{source}: the first CSV column must be 'bidder', got {header[:1]}")
    items: list[str] = []
    bundles: list[list[str]] = []
    for label in header[1:]:
        bundle = parse_bundle_label(label)
        bundles.append(bundle)
        for item in bundle:
            if item not in items:
                items.append(item)
    _check_csv_items(header[1:], bundles, items, source)
    triples: list[tuple[str, list[str], float]] = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(
                f"{source}: CSV line {line} has {len(row)} cells, the header has {len(header)}"
            )
        bidder = row[0].strip()
        for label, bundle, cell in zip(header[1:], bundles, row[1:], strict=True):
            cell = cell.strip()
            if cell == "":
                continue
            try:
                value = float(cell)
            except ValueError:
                raise InvalidBidError(
                    f"{source}: CSV line {line}, column '{label}': expected a number, got {cell!r}",
                    field=label,
                ) from None
            if not math.isfinite(value):
                raise InvalidBidError(
                    f"{source}: CSV line {line}, column '{label}': non-finite value {cell!r}",
                    field=label,
                )
            triples.append((bidder, bundle, value))
    return Auction.from_bids(items, triples)


def _sniff(text: str) -> str:
    """The format of auction text read from standard input: json, cats or csv."""
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        return "json"
    first = stripped.split("\n", 1)[0].strip().lower()
    if first.startswith("bidder"):
        return "csv"
    return "cats"


def load_auction(path: str | Path) -> Auction:
    """Read an auction from a ``.json``, ``.csv`` or CATS ``.txt`` file (``-``: standard input,
    format recognized from the text).

    Raises
    ------
    InputFileError
        If the file is missing, unreadable, or not valid JSON/CSV/CATS.
    InvalidBidError
        If the content is readable but the bids are invalid.
    InputError
        If the file is another kind of pivotal document (a market, a scenario, a result).
    """
    text = read_text(path)
    name = display_name(path)
    fmt = _sniff(text) if is_stdin(path) else Path(path).suffix.lower().lstrip(".")
    if fmt == "csv":
        return auction_from_csv_text(text, source=name)
    if fmt in {"txt", "cats"}:
        return auction_from_cats_text(text, source=name)
    doc = parse_json(text, path)
    require_kind(doc, ("auction",), path)
    return auction_from_document(doc, source=name)
