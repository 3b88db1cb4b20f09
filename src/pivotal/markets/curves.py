"""Cost and benefit curves of a procurement market, and each agent's response to a price.

A producer with convex cost ``c`` on ``[0, cap]`` supplies ``y(p) = argmax p*y - c(y)``; a buyer
with concave benefit ``b`` on ``[0, cap]`` demands ``x(p) = argmax b(x) - p*x``. Kinds:

- ``linear``: ``a*q`` (a step offer: all or nothing at price ``a``);
- ``quadratic``: cost ``a*q + b*q^2``, benefit ``a*q - b*q^2`` (``b >= 0``): a linear ramp;
- ``piecewise_linear``: points ``[[0, 0], [q1, v1], ...]``, convex for costs and concave for
  benefits (step offers, as in electricity markets);
- ``marginal`` (Python API only): any increasing marginal cost (decreasing marginal benefit)
  given as a callable; responses by monotone root finding, values by quadrature.

Closed-form kinds also describe their response as *pieces* on an axis ``r`` along which the
quantity is nondecreasing (``r = p`` for producers, ``r = -p`` for buyers): a *jump* of ``size``
at ``t0`` or a *ramp* rising linearly from 0 at ``t0`` to ``size`` at ``t1`` (a quadratic's ``a``
and ``a + 2 b cap``; a ramp narrower than the floating-point spacing at ``t0`` is a jump). The
agent's surplus at ``r`` (profit ``max p*y - c(y)`` for a producer, ``max b(x) - p*x`` for a buyer)
is the integral of its quantity; both are evaluated per piece in closed form.

Numbers are refused at validation when a computation on them could leave double precision:
every coefficient, point and capacity is 0 or between ``MIN_MAGNITUDE`` (1e-100) and
``MAX_MAGNITUDE`` (1e100) in absolute value (a subnormal ``b = 1e-310`` made the aggregate curves
NaN; issue 20).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pivotal.errors import InvalidCurveError

Event = tuple[float, float, float]  # (t, alpha, beta) on the r axis
Piece = tuple[float, float, float]  # (t0, t1, size) on the r axis; t1 == t0 for a jump

MIN_MAGNITUDE = 1e-100
"""Smallest accepted nonzero magnitude of a curve's numbers."""
MAX_MAGNITUDE = 1e100
"""Largest accepted magnitude of a curve's numbers (products and squares stay finite)."""


class Role(Enum):
    """Which side of the market an agent is on."""

    PRODUCER = "producer"
    """Supplies quantity at a convex cost."""
    BUYER = "buyer"
    """Demands quantity for a concave benefit."""


class CurveKind(Enum):
    """Families of cost and benefit curves."""

    LINEAR = "linear"
    """``a*q``: all-or-nothing at price ``a``."""
    QUADRATIC = "quadratic"
    """``a*q + b*q^2`` (cost) or ``a*q - b*q^2`` (benefit)."""
    PIECEWISE_LINEAR = "piecewise_linear"
    """Convex (cost) or concave (benefit) points starting at ``(0, 0)``."""
    MARGINAL = "marginal"
    """A monotone marginal function given as a Python callable."""


@dataclass(frozen=True)
class Curve:
    """A validated cost (producer) or benefit (buyer) curve on ``[0, capacity]``.

    Build with :func:`linear`, :func:`quadratic`, :func:`piecewise_linear` or :func:`marginal`.
    """

    kind: CurveKind
    role: Role
    capacity: float
    a: float = 0.0
    b: float = 0.0
    points: tuple[tuple[float, float], ...] = ()
    marginal_fn: Callable[[float], float] | None = None

    @property
    def sign(self) -> float:
        """+1 for producers (r = p), -1 for buyers (r = -p)."""
        return 1.0 if self.role is Role.PRODUCER else -1.0

    @property
    def closed_form(self) -> bool:
        """Whether responses are closed-form (every kind but ``marginal``)."""
        return self.kind is not CurveKind.MARGINAL

    def value(self, q: float) -> float:
        """Cost ``c(q)`` (producer) or benefit ``b(q)`` (buyer), ``0 <= q <= capacity``."""
        q = min(max(q, 0.0), self.capacity)
        if self.kind is CurveKind.LINEAR:
            return self.a * q
        if self.kind is CurveKind.QUADRATIC:
            return self.a * q + self.sign * self.b * q * q
        if self.kind is CurveKind.PIECEWISE_LINEAR:
            for (q0, v0), (q1, v1) in zip(self.points, self.points[1:], strict=False):
                if q <= q1:
                    return v0 + (v1 - v0) * (q - q0) / (q1 - q0)
            return self.points[-1][1]
        assert self.marginal_fn is not None
        fn = self.marginal_fn
        from scipy import integrate  # 0.8 s to import: only the generic curves need it

        return float(integrate.quad(fn, 0.0, q, limit=200, epsabs=1e-12, epsrel=1e-12)[0])

    def marginal(self, q: float) -> float:
        """Marginal cost or benefit at ``q`` (right derivative)."""
        if self.kind is CurveKind.LINEAR:
            return self.a
        if self.kind is CurveKind.QUADRATIC:
            return self.a + self.sign * 2.0 * self.b * q
        if self.kind is CurveKind.PIECEWISE_LINEAR:
            for (q0, v0), (q1, v1) in zip(self.points, self.points[1:], strict=False):
                if q < q1:
                    return (v1 - v0) / (q1 - q0)
            (q0, v0), (q1, v1) = self.points[-2], self.points[-1]
            return (v1 - v0) / (q1 - q0)
        assert self.marginal_fn is not None
        return float(self.marginal_fn(q))

    def pieces(self) -> list[Piece]:
        """The response as jumps and ramps ``(t0, t1, size)`` on the r axis (closed-form kinds).

        A quadratic's ramp runs from ``s*a`` to ``s*a + 2*b*cap`` (as rounded); where that is
        ``s*a`` again (``2*b*cap`` below the spacing of floats there) it is a jump.
        """
        s = self.sign
        if self.capacity <= 0:
            return []
        if self.kind is CurveKind.LINEAR or (self.kind is CurveKind.QUADRATIC and self.b == 0):
            return [(s * self.a, s * self.a, self.capacity)]
        if self.kind is CurveKind.QUADRATIC:
            t0 = s * self.a
            return [(t0, t0 + 2.0 * self.b * self.capacity, self.capacity)]
        if self.kind is CurveKind.PIECEWISE_LINEAR:
            out: list[Piece] = []
            for (q0, v0), (q1, v1) in zip(self.points, self.points[1:], strict=False):
                t = s * (v1 - v0) / (q1 - q0)
                out.append((t, t, q1 - q0))
            return out
        raise InvalidCurveError("a 'marginal' curve has no closed-form pieces")

    def events(self) -> list[Event]:
        """The response as jumps and ramps on the r axis (closed-form kinds only).

        The older form of :meth:`pieces` (``(t, alpha, beta)``: a jump ``alpha`` at ``t``, a
        ramp's slope ``+beta`` from its start and ``-beta`` from its end); kept for callers of
        :meth:`pivotal.markets.aggregate.AggregateMarket.from_arrays`.
        """
        s = self.sign
        if self.capacity <= 0:
            return []
        if self.kind is CurveKind.LINEAR or (self.kind is CurveKind.QUADRATIC and self.b == 0):
            return [(s * self.a, self.capacity, 0.0)]
        if self.kind is CurveKind.QUADRATIC:
            slope = 1.0 / (2.0 * self.b)
            t0 = s * self.a
            return [(t0, 0.0, slope), (t0 + 2.0 * self.b * self.capacity, 0.0, -slope)]
        if self.kind is CurveKind.PIECEWISE_LINEAR:
            out: list[Event] = []
            for (q0, v0), (q1, v1) in zip(self.points, self.points[1:], strict=False):
                out.append((s * (v1 - v0) / (q1 - q0), q1 - q0, 0.0))
            return out
        raise InvalidCurveError("a 'marginal' curve has no closed-form events")

    def response(self, price: float) -> tuple[float, float]:
        """The interval of optimal quantities at ``price`` (a point except at a step)."""
        if self.closed_form:
            r = self.sign * price
            lo = hi = 0.0
            for t0, t1, size in self.pieces():
                if t1 > t0:  # a ramp: continuous
                    q = size if r >= t1 else max(r - t0, 0.0) * (size / (t1 - t0))
                    lo, hi = lo + min(q, size), hi + min(q, size)
                elif t0 < r:
                    lo, hi = lo + size, hi + size
                elif t0 == r:
                    hi += size
            return min(lo, self.capacity), min(hi, self.capacity)
        fn = self.marginal_fn
        assert fn is not None

        def gap(q: float) -> float:
            return self.sign * (price - float(fn(q)))

        if gap(0.0) <= 0:
            return 0.0, 0.0
        if gap(self.capacity) >= 0:
            return self.capacity, self.capacity
        from scipy import optimize  # as above

        q = float(optimize.brentq(gap, 0.0, self.capacity, xtol=1e-14, rtol=1e-14))
        return q, q

    def to_dict(self) -> dict[str, object]:
        """The JSON form (``marginal`` curves cannot be written)."""
        if self.kind is CurveKind.MARGINAL:
            raise InvalidCurveError("a 'marginal' curve is a Python callable; it has no JSON form")
        if self.kind is CurveKind.PIECEWISE_LINEAR:
            return {"kind": self.kind.value, "points": [list(p) for p in self.points]}
        if self.kind is CurveKind.LINEAR:
            return {"kind": self.kind.value, "a": self.a}
        return {"kind": self.kind.value, "a": self.a, "b": self.b}


def _finite(name: str, *values: float) -> None:
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise InvalidCurveError(f"{name}: expected finite numbers, got {v!r}", field=name)
        if v != 0 and not MIN_MAGNITUDE <= abs(v) <= MAX_MAGNITUDE:
            raise InvalidCurveError(
                f"{name}: {v!r} is outside the accepted magnitudes (0, or between "
                f"{MIN_MAGNITUDE:g} and {MAX_MAGNITUDE:g} in absolute value); express the curve "
                "in other units",
                field=name,
            )


def _capacity(where: str, capacity: float) -> float:
    _finite(f"{where}.capacity", capacity)
    if capacity < 0:
        raise InvalidCurveError(
            f"{where}: capacity {capacity} is negative; capacities must be >= 0",
            field=f"{where}.capacity",
        )
    return float(capacity)


def linear(role: Role, a: float, capacity: float, *, where: str = "curve") -> Curve:
    """``a*q`` on ``[0, capacity]``."""
    _finite(f"{where}.a", a)
    return Curve(CurveKind.LINEAR, role, _capacity(where, capacity), a=float(a))


def quadratic(role: Role, a: float, b: float, capacity: float, *, where: str = "curve") -> Curve:
    """Cost ``a*q + b*q^2`` or benefit ``a*q - b*q^2`` on ``[0, capacity]``, ``b >= 0``."""
    _finite(f"{where}.a", a)
    _finite(f"{where}.b", b)
    if b < 0:
        what = "convex" if role is Role.PRODUCER else "concave"
        raise InvalidCurveError(
            f"{where}: quadratic coefficient b = {b} makes the curve non-{what}; use b >= 0",
            field=f"{where}.b",
        )
    return Curve(CurveKind.QUADRATIC, role, _capacity(where, capacity), a=float(a), b=float(b))


def piecewise_linear(
    role: Role,
    points: list[tuple[float, float]] | list[list[float]],
    capacity: float | None = None,
    *,
    where: str = "curve",
) -> Curve:
    """Points ``(q, v)`` from ``(0, 0)`` with increasing ``q``; convex (cost) or concave (benefit).

    ``capacity`` defaults to the last point's ``q``; a smaller capacity cuts the curve there.
    """
    pts = [tuple(p) for p in points]
    if len(pts) < 2:
        raise InvalidCurveError(f"{where}: give at least two points", field=f"{where}.points")
    for i, p in enumerate(pts):
        if len(p) != 2:
            raise InvalidCurveError(
                f"{where}: points[{i}] must be [q, v]", field=f"{where}.points[{i}]"
            )
        _finite(f"{where}.points[{i}]", *p)
    if pts[0] != (0, 0):
        raise InvalidCurveError(
            f"{where}: the first point must be [0, 0], got {list(pts[0])}",
            field=f"{where}.points[0]",
        )
    slopes = []
    for i in range(1, len(pts)):
        dq = pts[i][0] - pts[i - 1][0]
        if dq <= 0:
            raise InvalidCurveError(
                f"{where}: quantities must increase, but points[{i}] has q = {pts[i][0]} after "
                f"{pts[i - 1][0]}",
                field=f"{where}.points[{i}]",
            )
        slopes.append((pts[i][1] - pts[i - 1][1]) / dq)
    for i in range(1, len(slopes)):
        worse = slopes[i] < slopes[i - 1] if role is Role.PRODUCER else slopes[i] > slopes[i - 1]
        if worse and not math.isclose(slopes[i], slopes[i - 1], rel_tol=1e-12, abs_tol=1e-12):
            shape = "convex" if role is Role.PRODUCER else "concave"
            order = "increase" if role is Role.PRODUCER else "decrease"
            raise InvalidCurveError(
                f"{where}: a {role.value}'s piecewise-linear curve must be {shape} (slopes must "
                f"{order}), but the slope goes from {slopes[i - 1]:g} to {slopes[i]:g} at "
                f"points[{i + 1}]",
                field=f"{where}.points[{i + 1}]",
            )
    last = float(pts[-1][0])
    cap = last if capacity is None else _capacity(where, capacity)
    if cap > last:
        raise InvalidCurveError(
            f"{where}: capacity {cap} exceeds the last point's quantity {last}; extend the points",
            field=f"{where}.capacity",
        )
    cut: list[tuple[float, float]] = [(float(pts[0][0]), float(pts[0][1]))]
    for (q0, v0), (q1, v1) in zip(pts, pts[1:], strict=False):
        if cap <= q0:
            break
        if cap < q1:
            cut.append((cap, v0 + (v1 - v0) * (cap - q0) / (q1 - q0)))
            break
        cut.append((float(q1), float(v1)))
    if len(cut) < 2:
        return Curve(CurveKind.LINEAR, role, 0.0, a=slopes[0])
    return Curve(CurveKind.PIECEWISE_LINEAR, role, cap, points=tuple(cut))


def marginal(
    role: Role, marginal_fn: Callable[[float], float], capacity: float, *, where: str = "curve"
) -> Curve:
    """A curve given by its marginal cost (increasing) or marginal benefit (decreasing)."""
    cap = _capacity(where, capacity)
    if not callable(marginal_fn):
        raise InvalidCurveError(f"{where}: the marginal function must be callable")
    grid = [cap * k / 16 for k in range(17)]
    values = [float(marginal_fn(q)) for q in grid]
    if not all(math.isfinite(v) for v in values):
        raise InvalidCurveError(f"{where}: the marginal function returns non-finite values")
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    bad = any(s < -1e-12 for s in steps) if role is Role.PRODUCER else any(s > 1e-12 for s in steps)
    if bad:
        order = "increasing" if role is Role.PRODUCER else "decreasing"
        raise InvalidCurveError(f"{where}: the marginal function must be {order} on [0, {cap}]")
    return Curve(CurveKind.MARGINAL, role, cap, marginal_fn=marginal_fn)
