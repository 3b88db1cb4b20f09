"""The procurement market's result document (:class:`MarketResult`): the VCG outcome, the
uniform-price comparison, the largest producer's best withholding at the uniform price
(optional), and the input. This module only describes and assembles the document, so that
reports can read it without importing the mechanism."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pivotal.documents import DocumentModel, ResultDocument
from pivotal.results import ResultKind, tagged

if TYPE_CHECKING:
    from pivotal.markets.clarke import MarketOutcome, PerAgent
    from pivotal.markets.market import Market
    from pivotal.markets.misreports import WithholdingResult


class UniformPriceDocument(DocumentModel):
    """Everyone trades at the clearing price: transfers paid to each agent, profits, budget."""

    price: float
    transfers: dict[str, float]
    profits: dict[str, float]
    budget: float


class WithholdingPoint(DocumentModel):
    """One offered fraction of capacity: the price, the uniform-price profit and VCG utility."""

    fraction: float
    price: float
    uniform_profit: float
    vcg_utility: float


class WithholdingDocument(DocumentModel):
    """The largest producer's best withholding against the uniform price, and under VCG."""

    producer: str
    best_fraction_offered: float
    price_truthful: float
    price_withholding: float
    profit_truthful: float
    profit_withholding: float
    profit_gain: float
    welfare_loss: float
    vcg_utility_truthful: float
    vcg_utility_at_best_withholding: float
    curve: list[WithholdingPoint]


class MarketResult(ResultDocument):
    """The document of ``pivotal market run`` (``--json`` / ``-o``). ``transfers`` are paid
    **to** each agent (negative: a buyer pays)."""

    mechanism: str
    price: float
    welfare: float
    traded: float
    quantities: dict[str, float]
    values: dict[str, float]
    roles: dict[str, str]
    marginal_contributions: dict[str, float]
    transfers: dict[str, float]
    utilities: dict[str, float]
    budget: float
    net_revenue: float
    uniform_price: UniformPriceDocument
    withholding: WithholdingDocument | None = None
    input: dict[str, Any] | None = None


def market_result(
    market: Market,
    outcome: MarketOutcome,
    withholding: WithholdingResult | None = None,
    *,
    per_agent: PerAgent | None = None,
    given: Any = None,
) -> dict[str, Any]:
    """The result document (see :class:`MarketResult`), with the largest producer's best
    withholding at the uniform price when given
    (:func:`pivotal.markets.misreports.best_withholding`). ``per_agent`` and ``given`` (the
    input's value) are for :func:`pivotal.markets.encode.market_result_json`, which passes
    pre-encoded JSON."""
    doc = tagged(
        ResultKind.MARKET,
        outcome.to_dict() if per_agent is None else outcome.to_dict(per_agent),
    )
    if withholding is not None:
        doc["withholding"] = withholding.to_dict()
    doc["input"] = market.to_dict() if given is None else given
    return doc


__all__ = ["MarketResult", "market_result"]
