"""Payment rules on the efficient allocation, behind one entry point :func:`run_auction`."""

from __future__ import annotations

import time
from enum import Enum

from pivotal.auctions.bids import Auction
from pivotal.auctions.clarke import ProgressCallback, vcg
from pivotal.auctions.core_payments import core_payments
from pivotal.auctions.outcome import AuctionOutcome, build_outcome
from pivotal.auctions.winner_determination import Allocation, solve_wdp
from pivotal.engine import Engine
from pivotal.errors import InputError
from pivotal.results import Provenance, Tolerances, package_version
from pivotal.solvers import SolverOptions, exactness


class PaymentRule(Enum):
    """How winners pay for the efficient allocation."""

    VCG = "vcg"
    """Clarke pivot payments: truthful bidding is a dominant strategy."""
    CORE_VCG_NEAREST = "core-vcg-nearest"
    """Minimum-revenue core point closest to VCG (Day & Cramton 2012)."""
    CORE_BIDDER_OPTIMAL = "core-bidder-optimal"
    """A minimum-revenue (bidder-optimal) core point (Day & Raghavan 2007)."""
    PAY_AS_BID = "pay-as-bid"
    """First price: each winner pays its bid (not truthful; for comparison)."""


def pay_as_bid(
    auction: Auction,
    options: SolverOptions | None = None,
    *,
    tolerances: Tolerances | None = None,
    allocation: Allocation | None = None,
) -> AuctionOutcome:
    """The efficient allocation with first-price payments (each winner pays its bid).

    Not truthful: a winner gains by shading its bid. Kept for comparison and audits.
    """
    start = time.perf_counter()
    opts = options or SolverOptions()
    if allocation is None:
        allocation = solve_wdp(auction, opts)
    winners = allocation.winners(auction)
    payments = {b: auction.bids[k].value for b, k in winners.items()}
    provenance = Provenance(
        mechanism=PaymentRule.PAY_AS_BID.value,
        input_sha256=auction.sha256,
        solver="highs",
        solver_version=package_version("highspy"),
        tolerances=tolerances or Tolerances(),
        parameters={"time_limit": opts.time_limit, "approximate": opts.approximate},
        seconds=time.perf_counter() - start,
        n_solves=1,
        exact=allocation.exact,
    )
    return build_outcome(auction, winners, payments, provenance)


def payment_rule(rule: PaymentRule | str) -> PaymentRule:
    """The payment rule named ``rule`` (its value, e.g. ``"core-vcg-nearest"``, or the member).

    Raises
    ------
    InputError
        For a name that is not a payment rule, listing the valid names.
    """
    if isinstance(rule, PaymentRule):
        return rule
    try:
        return PaymentRule(str(rule).strip().lower())
    except ValueError:
        names = ", ".join(r.value for r in PaymentRule)
        raise InputError(f"unknown payment rule {rule!r}; use one of: {names}") from None


def run_auction(
    auction: Auction,
    rule: PaymentRule | str = PaymentRule.VCG,
    options: SolverOptions | None = None,
    *,
    approximate: bool = False,
    tolerances: Tolerances | None = None,
    engine: Engine | None = None,
    on_progress: ProgressCallback | None = None,
) -> AuctionOutcome:
    """Solve winner determination and charge ``rule``'s payments.

    ``rule`` is a :class:`PaymentRule` or its name (``"vcg"``, ``"core-vcg-nearest"``,
    ``"core-bidder-optimal"``, ``"pay-as-bid"``). Core rules start from the VCG outcome (VCG
    payments are the lower bounds of the core program) and add the core constraints found by
    separation; their provenance records the minimum core revenue and the number of constraints
    generated. ``approximate=True`` is a shorthand for ``SolverOptions(approximate=True)``; the
    policy governs every solve, the core program's included.
    """
    rule = payment_rule(rule)
    options = exactness(options, approximate)
    if rule is PaymentRule.PAY_AS_BID:
        return pay_as_bid(auction, options, tolerances=tolerances)
    base = vcg(
        auction,
        options,
        tolerances=tolerances,
        engine=engine,
        on_progress=on_progress,
    )
    if rule is PaymentRule.VCG:
        return base
    return core_outcome(auction, base, rule, options, tolerances=tolerances)


def core_outcome(
    auction: Auction,
    base: AuctionOutcome,
    rule: PaymentRule | str,
    options: SolverOptions | None = None,
    *,
    tolerances: Tolerances | None = None,
) -> AuctionOutcome:
    """A core rule's outcome on top of an already computed VCG outcome ``base``.

    The outcome is exact only when ``base`` is and every core solve proved optimality.
    """
    rule = payment_rule(rule)
    if rule not in (PaymentRule.CORE_VCG_NEAREST, PaymentRule.CORE_BIDDER_OPTIMAL):
        raise InputError(
            f"{rule.value} is not a core-selecting rule; use core-vcg-nearest or "
            "core-bidder-optimal"
        )
    core = core_payments(
        auction,
        base,
        rule="vcg-nearest" if rule is PaymentRule.CORE_VCG_NEAREST else "bidder-optimal",
        options=options,
        tolerances=tolerances,
    )
    prov = base.provenance
    provenance = Provenance(
        mechanism=rule.value,
        input_sha256=prov.input_sha256,
        solver="highs",
        solver_version=prov.solver_version,
        tolerances=prov.tolerances,
        parameters={
            **prov.parameters,
            "vcg_payments": dict(base.payments),
            "mrc_revenue": core.mrc_revenue,
            "core_constraints": len(core.constraints),
            "core_separations": core.separations,
            "approximate": bool(options is not None and options.approximate)
            or bool(prov.parameters.get("approximate", False)),
        },
        seconds=prov.seconds + core.seconds,
        n_solves=prov.n_solves + core.separations + len(core.constraints),
        exact=prov.exact and core.exact,
    )
    return build_outcome(auction, dict(base.winning_bids), core.payments, provenance)
