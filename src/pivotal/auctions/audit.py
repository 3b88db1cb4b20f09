"""Audits of an auction outcome: certificates and a search for profitable misreports.

Checks on the outcome itself:

- individual rationality: every bidder's utility at its reports is >= 0;
- losers pay 0; no winner pays more than its winning bid;
- no deficit: revenue >= 0;
- core membership (informational): the most blocking coalition, by the separation problem of
  :mod:`pivotal.auctions.core_payments`.

Misreport search (a DSIC check by search, not a proof): for each bidder, with every other bidder
truthful, run the mechanism on a set of deviations and score each with the bidder's *true*
(reported) valuation, ``u = v_i(S') - p'_i``. The deviations are: scaling all values up or down,
scaling or raising one bid, dropping a bid, keeping one bid only, claiming a bid's value for a
strict sub-bundle, and seeded random perturbations. Under VCG no deviation may gain more than the
tolerance; under pay-as-bid shading finds gains.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from pivotal.auctions.bids import Auction, format_bundle
from pivotal.auctions.core_payments import BlockingCoalition, is_in_core
from pivotal.auctions.outcome import AuctionOutcome
from pivotal.auctions.payment_rules import PaymentRule, run_auction
from pivotal.results import Check, Tolerances
from pivotal.solvers import SolverOptions

ReportedBids = tuple[tuple[frozenset[str], float], ...]
Mechanism = Callable[[Auction], AuctionOutcome]

SCALES = (0.0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.01, 1.05, 1.1, 1.25, 1.5, 2.0, 3.0)
ONE_BID_SCALES = (0.0, 0.5, 0.9, 1.1, 1.5, 2.0)


@dataclass(frozen=True)
class Deviation:
    """A misreport: the bids a bidder reports instead of its true ones."""

    description: str
    bids: ReportedBids


@dataclass(frozen=True)
class MisreportResult:
    """The best deviation found for one bidder."""

    bidder: str
    truthful_utility: float
    best_utility: float
    gain: float
    best_deviation: str
    n_deviations: int


@dataclass(frozen=True)
class CoreMembership:
    """Whether the outcome's payments are in the core, and the most blocking coalition."""

    in_core: bool
    coalition: BlockingCoalition


@dataclass(frozen=True)
class AuditReport:
    """Certificates and misreport search of one mechanism on one auction.

    ``core`` is informational (VCG is often outside the core); it does not enter ``passed``.
    """

    mechanism: str
    checks: tuple[Check, ...]
    misreports: tuple[MisreportResult, ...]
    seed: int
    tolerances: Tolerances
    core: CoreMembership

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(c.passed for c in self.checks)

    @property
    def max_gain(self) -> float:
        """Largest misreport gain found over all bidders (0 if none)."""
        return max((m.gain for m in self.misreports), default=0.0)

    def to_dict(self) -> dict[str, object]:
        """JSON-compatible dictionary."""
        return {
            "mechanism": self.mechanism,
            "passed": self.passed,
            "checks": [
                {"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks
            ],
            "misreports": [
                {
                    "bidder": m.bidder,
                    "truthful_utility": m.truthful_utility,
                    "best_utility": m.best_utility,
                    "gain": m.gain,
                    "best_deviation": m.best_deviation,
                    "n_deviations": m.n_deviations,
                }
                for m in self.misreports
            ],
            "max_gain": self.max_gain,
            "seed": self.seed,
            "core": {
                "in_core": self.core.in_core,
                "most_blocking_coalition": list(self.core.coalition.bidders),
                "coalition_allocation": {
                    b: list(v) for b, v in self.core.coalition.allocation.items()
                },
                "coalition_value": self.core.coalition.value,
                "coalition_offer": self.core.coalition.offer,
                "revenue": self.core.coalition.revenue,
            },
        }


def outcome_checks(
    auction: Auction, outcome: AuctionOutcome, tolerances: Tolerances
) -> list[Check]:
    """Individual rationality, losers pay 0, payments <= bids, no deficit."""
    scale = max((b.value for b in auction.bids), default=1.0)
    slack = tolerances.slack(scale)
    checks: list[Check] = []
    bad_ir = {b: u for b, u in outcome.utilities.items() if u < -slack}
    checks.append(
        Check(
            "individual rationality",
            not bad_ir,
            "every bidder's utility >= 0" if not bad_ir else f"negative utility: {_fmt(bad_ir)}",
        )
    )
    losers = {
        b: p for b, p in outcome.payments.items() if b not in outcome.allocation and abs(p) > slack
    }
    checks.append(
        Check(
            "losers pay 0",
            not losers,
            "every loser pays 0" if not losers else f"losers charged: {_fmt(losers)}",
        )
    )
    over = {
        b: outcome.payments[b]
        for b in outcome.allocation
        if outcome.payments[b] > outcome.values[b] + slack
    }
    checks.append(
        Check(
            "payment <= winning bid",
            not over,
            "no winner pays more than its bid" if not over else f"overcharged: {_fmt(over)}",
        )
    )
    checks.append(
        Check(
            "no deficit",
            outcome.revenue >= -slack,
            f"revenue {outcome.revenue:g} >= 0",
        )
    )
    checks.append(
        Check(
            "revenue <= welfare",
            outcome.revenue <= outcome.welfare + slack,
            f"revenue {outcome.revenue:g} <= welfare {outcome.welfare:g}",
        )
    )
    return checks


def deviations(
    auction: Auction,
    bidder: str,
    rng: np.random.Generator,
    *,
    n_random: int = 20,
    max_subbundles: int = 14,
) -> Iterator[Deviation]:
    """Misreports of ``bidder`` (see the module docstring); deterministic given ``rng``."""
    true = [(auction.bids[k].bundle, float(auction.bids[k].value)) for k in auction.bids_of[bidder]]
    if not true:
        return
    top = max(v for _, v in true) or 1.0
    for s in SCALES:
        yield Deviation(f"all values x{s:g}", tuple((b, v * s) for b, v in true))
    for j, (bundle, value) in enumerate(true):
        name = format_bundle(bundle, auction.items)
        rest = true[:j] + true[j + 1 :]
        if len(true) > 1:
            yield Deviation(f"drop bid on {name}", tuple(rest))
            yield Deviation(f"only bid on {name}", ((bundle, value),))
        for s in ONE_BID_SCALES:
            yield Deviation(f"bid on {name} x{s:g}", tuple(rest + [(bundle, value * s)]))
        for frac in (0.1, 0.5, 1.0):
            yield Deviation(
                f"bid on {name} +{frac * top:g}", tuple(rest + [(bundle, value + frac * top)])
            )
        subs = 0
        for size in range(len(bundle) - 1, 0, -1):
            for sub in itertools.combinations(sorted(bundle), size):
                if subs >= max_subbundles:
                    break
                sub_set = frozenset(sub)
                if any(b == sub_set for b, _ in rest):
                    continue
                subs += 1
                yield Deviation(
                    f"claim {value:g} for sub-bundle {format_bundle(sub_set, auction.items)} "
                    f"instead of {name}",
                    tuple(rest + [(sub_set, value)]),
                )
    for r in range(n_random):
        noise = rng.lognormal(0.0, 0.3, size=len(true))
        keep = rng.random(len(true)) >= 0.2
        bids = tuple((b, v * f) for (b, v), f, k in zip(true, noise, keep, strict=True) if k)
        yield Deviation(f"random perturbation #{r + 1}", bids)


def misreport_utility(
    auction: Auction, bidder: str, reported: ReportedBids, mechanism: Mechanism
) -> float:
    """The bidder's true utility when it reports ``reported`` and everyone else is truthful."""
    outcome = mechanism(auction.replace_bids(bidder, reported))
    won = outcome.allocation.get(bidder, ())
    return auction.value(bidder, won) - outcome.payments.get(bidder, 0.0)


def search_misreports(
    auction: Auction,
    bidder: str,
    mechanism: Mechanism,
    truthful_utility: float,
    rng: np.random.Generator,
    *,
    n_random: int = 20,
) -> MisreportResult:
    """Best utility over :func:`deviations` for one bidder."""
    best_u, best_desc, count = truthful_utility, "truthful", 0
    for dev in deviations(auction, bidder, rng, n_random=n_random):
        count += 1
        u = misreport_utility(auction, bidder, dev.bids, mechanism)
        if u > best_u + 1e-12 * max(1.0, abs(best_u)):  # ignore floating-point noise
            best_u, best_desc = u, dev.description
    return MisreportResult(
        bidder, truthful_utility, best_u, best_u - truthful_utility, best_desc, count
    )


def audit_auction(
    auction: Auction,
    rule: PaymentRule = PaymentRule.VCG,
    options: SolverOptions | None = None,
    *,
    rng: np.random.Generator | None = None,
    seed: int = 0,
    n_random: int = 20,
    tolerances: Tolerances | None = None,
    on_bidder: Callable[[str], None] | None = None,
) -> AuditReport:
    """Certificates of ``rule``'s outcome and the best misreport gain per bidder.

    ``rng`` drives the random perturbations (default: ``numpy.random.default_rng(seed)``; the
    seed is recorded). ``on_bidder`` is called after each bidder's search (progress display).
    """
    tol = tolerances or Tolerances()
    generator = rng if rng is not None else np.random.default_rng(seed)

    def mechanism(a: Auction) -> AuctionOutcome:
        return run_auction(a, rule, options, tolerances=tol)

    outcome = mechanism(auction)
    checks = outcome_checks(auction, outcome, tol)
    in_core, coalition = is_in_core(auction, outcome, tol, options)
    results = []
    for bidder in auction.bidders:
        results.append(
            search_misreports(
                auction, bidder, mechanism, outcome.utilities[bidder], generator, n_random=n_random
            )
        )
        if on_bidder is not None:
            on_bidder(bidder)
    scale = max((b.value for b in auction.bids), default=1.0)
    gainers = {m.bidder: m.gain for m in results if m.gain > tol.slack(scale)}
    checks.append(
        Check(
            "no profitable misreport found",
            not gainers,
            f"{sum(m.n_deviations for m in results)} deviations searched, none gains"
            if not gainers
            else f"profitable misreports: {_fmt(gainers)}",
        )
    )
    return AuditReport(
        rule.value, tuple(checks), tuple(results), seed, tol, CoreMembership(in_core, coalition)
    )


def _fmt(values: dict[str, float]) -> str:
    return ", ".join(f"{k}: {v:g}" for k, v in values.items())
