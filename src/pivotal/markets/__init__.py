"""Procurement markets with divisible quantities: VCG transfers next to the uniform price."""

from pivotal.markets.audit import MarketAudit, audit_market
from pivotal.markets.clarke import MarketOutcome, UniformPrice, vcg_market
from pivotal.markets.clearing import Clearing, clear
from pivotal.markets.curves import (
    Curve,
    CurveKind,
    Role,
    linear,
    marginal,
    piecewise_linear,
    quadratic,
)
from pivotal.markets.generators import draw_market, generate_market
from pivotal.markets.market import Agent, Market, load_market, market_from_document
from pivotal.markets.misreports import WithholdingResult, best_withholding
from pivotal.results import Tolerances

__all__ = [
    "Agent",
    "Clearing",
    "Curve",
    "CurveKind",
    "Market",
    "MarketAudit",
    "MarketOutcome",
    "Role",
    "Tolerances",
    "UniformPrice",
    "WithholdingResult",
    "audit_market",
    "best_withholding",
    "clear",
    "draw_market",
    "generate_market",
    "linear",
    "load_market",
    "marginal",
    "market_from_document",
    "piecewise_linear",
    "quadratic",
    "vcg_market",
]
