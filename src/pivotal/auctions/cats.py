"""The CATS text format (Leyton-Brown, Pearson & Shoham, EC 2000), read and written.

Layout: ``%`` comment lines; ``goods G``, ``bids B``, ``dummy D``; then one bid per line,
``id<TAB>price<TAB>good<TAB>...<TAB>#``. Goods ``0..G-1`` are real; goods ``>= G`` are dummy
goods that CATS uses to express XOR: bids sharing a dummy good belong to one bidder. Bidders are
the connected components of bids linked by shared dummy goods (a bid without a dummy good is a
bidder of its own), each named by its smallest bid id as a string. Items are named ``"0"`` to
``"G-1"``; bids are kept in increasing id order, so with ids ``0..B-1`` a bid's index is its id.
"""

from __future__ import annotations

import math
from pathlib import Path

from pivotal.auctions.bids import Auction, Bid, sorted_bundle
from pivotal.errors import InputError, InputFileError
from pivotal.fileio import write_text_atomic


def auction_from_cats_text(text: str, *, source: str = "input") -> Auction:
    """Parse CATS text into an :class:`Auction` (see the module docstring)."""
    header: dict[str, int] = {}
    raw: list[tuple[int, float, list[int], int]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("%"):
            continue
        parts = stripped.split()
        if parts[0] in {"goods", "bids", "dummy"}:
            if len(parts) != 2 or not parts[1].isdigit():
                raise InputFileError(
                    f"{source}: line {lineno}: expected '{parts[0]} N' with a whole number",
                    path=source,
                )
            header[parts[0]] = int(parts[1])
            continue
        if "goods" not in header:
            raise InputFileError(
                f"{source}: line {lineno}: bid line before the 'goods N' header; "
                "is this a CATS file?",
                path=source,
            )
        if parts[-1] != "#":
            raise InputFileError(
                f"{source}: line {lineno}: a bid line must end with '#'", path=source
            )
        try:
            bid_id = int(parts[0])
            price = float(parts[1])
            goods = [int(p) for p in parts[2:-1]]
        except (ValueError, IndexError):
            raise InputFileError(
                f"{source}: line {lineno}: expected 'id price good ... #' with numbers",
                path=source,
            ) from None
        if not math.isfinite(price) or price < 0:
            raise InputFileError(
                f"{source}: line {lineno}: bid {bid_id} has price {parts[1]}; prices must be "
                "finite and >= 0",
                path=source,
            )
        raw.append((bid_id, price, goods, lineno))
    if "goods" not in header:
        raise InputFileError(f"{source}: no 'goods N' header; is this a CATS file?", path=source)
    n_goods = header["goods"]
    if "bids" in header and header["bids"] != len(raw):
        raise InputFileError(
            f"{source}: header says bids {header['bids']} but the file has {len(raw)} bid lines",
            path=source,
        )
    raw.sort(key=lambda r: r[0])
    ids = [r[0] for r in raw]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise InputFileError(f"{source}: bid id {dup} appears twice", path=source)
    # union-find over bids linked by a shared dummy good
    parent = list(range(len(raw)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    first_with_dummy: dict[int, int] = {}
    for pos, (bid_id, _, goods, lineno) in enumerate(raw):
        for g in goods:
            if g < 0:
                raise InputFileError(
                    f"{source}: line {lineno}: bid {bid_id} names good {g} < 0", path=source
                )
            if g >= n_goods:
                if g in first_with_dummy:
                    parent[find(pos)] = find(first_with_dummy[g])
                else:
                    first_with_dummy[g] = pos
    names: dict[int, str] = {}
    for pos, (bid_id, _, _, _) in enumerate(raw):
        root = find(pos)
        if root not in names:  # positions are in id order: the first seen has the smallest id
            names[root] = str(bid_id)
    items = tuple(str(g) for g in range(n_goods))
    bids = []
    for pos, (bid_id, price, goods, lineno) in enumerate(raw):
        real = frozenset(str(g) for g in goods if g < n_goods)
        if not real:
            raise InputFileError(
                f"{source}: line {lineno}: bid {bid_id} names no real good", path=source
            )
        bids.append(Bid(names[find(pos)], real, price))
    try:
        return Auction(items, tuple(bids))
    except InputError as err:
        raise InputFileError(f"{source}: {err}", path=source) from None


def auction_to_cats_text(auction: Auction, *, comment: str = "") -> str:
    """Write an auction as CATS text.

    Items become goods ``0..G-1`` in the auction's item order and bids keep their order (ids
    ``0..B-1``); every bidder with two or more bids gets one dummy good shared by its bids. Read
    back, a bidder is named by its smallest bid id, so names other than that are not kept.
    """
    index = {item: i for i, item in enumerate(auction.items)}
    n_goods = len(auction.items)
    dummy: dict[str, int] = {}
    for bidder in auction.bidders:
        if len(auction.bids_of[bidder]) > 1:
            dummy[bidder] = n_goods + len(dummy)
    lines = [f"% {line}" for line in comment.splitlines()] if comment else []
    lines += [
        "% written by pivotal",
        "",
        f"goods {n_goods}",
        f"bids {len(auction.bids)}",
        f"dummy {len(dummy)}",
        "",
    ]
    for k, bid in enumerate(auction.bids):
        goods = [str(index[g]) for g in sorted_bundle(bid.bundle, auction.items)]
        if bid.bidder in dummy:
            goods.append(str(dummy[bid.bidder]))
        price = int(bid.value) if float(bid.value).is_integer() else repr(float(bid.value))
        lines.append("\t".join([str(k), str(price), *goods, "#"]))
    return "\n".join(lines) + "\n"


def write_cats(auction: Auction, path: str | Path, *, comment: str = "") -> None:
    """Write ``auction`` to ``path`` in CATS format (atomically: nothing on failure)."""
    write_text_atomic(Path(path), auction_to_cats_text(auction, comment=comment))
