"""Combinatorial auctions: XOR bids, exact winner determination, VCG and other payment rules."""

from pivotal.auctions.audit import AuditReport, MisreportResult, audit_auction
from pivotal.auctions.bids import Auction, Bid
from pivotal.auctions.cats import auction_from_cats_text, auction_to_cats_text, write_cats
from pivotal.auctions.clarke import vcg
from pivotal.auctions.formats import auction_from_document, load_auction
from pivotal.auctions.outcome import AuctionOutcome
from pivotal.auctions.payment_rules import PaymentRule, pay_as_bid, run_auction
from pivotal.auctions.sequential import SequentialOutcome, sequential_second_price
from pivotal.auctions.winner_determination import Allocation, solve_wdp
from pivotal.engine import Engine, engine_from_spec
from pivotal.results import Tolerances
from pivotal.solvers import SolverOptions

__all__ = [
    "Allocation",
    "AuditReport",
    "Auction",
    "AuctionOutcome",
    "Bid",
    "Engine",
    "MisreportResult",
    "PaymentRule",
    "SequentialOutcome",
    "SolverOptions",
    "Tolerances",
    "audit_auction",
    "auction_from_cats_text",
    "auction_from_document",
    "auction_to_cats_text",
    "engine_from_spec",
    "load_auction",
    "pay_as_bid",
    "run_auction",
    "sequential_second_price",
    "solve_wdp",
    "vcg",
    "write_cats",
]
