"""The Clarke pivot rule of the negotiation, as one pure function of costs.

With ``q*`` the joint plan and ``q^{-v}`` the best plan for the others when vendor ``v`` is held
at its status-quo block, vendor ``v`` pays the hub (DESIGN.md section 3)

    P_v = sum_{j != v} C_j(q*) - sum_{j != v} C_j(q^{-v}),

and every vendor pays the hub the activity fee. Transfers are signed from the party's side
(positive = paid to the party): ``t_v = -(P_v + fee)`` and ``t_hub = sum_v (P_v + fee)``.

The session's outcome and the centralized check (:func:`~pivotal.negotiation.simulation.
centralized_check`) both call :func:`clarke_transfers`, the first with the parties' reported
costs, the second with costs from centralized LPs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def clarke_payments(
    vendors: Sequence[str],
    joint: Mapping[str, float],
    without: Mapping[str, Mapping[str, float]],
) -> dict[str, float]:
    """``P_v`` for every vendor: ``joint[j]`` is ``C_j(q*)`` for every party and
    ``without[v][j]`` is ``C_j(q^{-v})`` for every party ``j != v``."""
    return {v: sum(joint[j] for j in without[v]) - sum(without[v].values()) for v in vendors}


def clarke_transfers(
    hub: str,
    vendors: Sequence[str],
    joint: Mapping[str, float],
    without: Mapping[str, Mapping[str, float]],
    activity_fee: float = 0.0,
) -> dict[str, float]:
    """Every party's transfer (positive = paid to it), the hub first; see the module
    docstring."""
    payments = clarke_payments(vendors, joint, without)
    out = {hub: float(sum(payments.values()) + activity_fee * len(vendors))}
    for v in vendors:
        out[v] = -(payments[v] + activity_fee)
    return out


__all__ = ["clarke_payments", "clarke_transfers"]
