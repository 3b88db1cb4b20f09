"""The registry of result kinds: how each mechanism's document is reported.

Adding a mechanism means its package (with a ``result`` module holding its document model) plus
one entry here and one in :data:`pivotal.report.documents.MODELS`.
"""

from __future__ import annotations

from pivotal.report import auction, market, negotiation
from pivotal.report.view import KindView
from pivotal.results import ResultKind

VIEWS: dict[ResultKind, KindView] = {
    ResultKind.AUCTION: auction.VIEW,
    ResultKind.MARKET: market.VIEW,
    ResultKind.NEGOTIATION: negotiation.VIEW,
}
