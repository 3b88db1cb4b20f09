"""A market's curves as columns: one array per parameter, no Python object per agent.

A :class:`CurveTable` holds every closed-form curve of a market in flat NumPy arrays (role sign,
kind, ``a``, ``b``, capacity, and the piecewise-linear points concatenated with per-agent
offsets). The mechanism, the JSON form and the hash of a market of 10^6 agents are computed
from it in vectorized passes; :class:`pivotal.markets.curves.Curve` objects are built only when
a caller asks for an agent.

:func:`table_from_document` is the fast path of :func:`pivotal.markets.market_from_document`: it
reads a well-formed document straight into columns and checks every rule of
:mod:`pivotal.markets.curves` on whole arrays, with the same floating-point operations as the
per-curve constructors (so the curves are the same numbers). It only ever *accepts*: on anything
it does not recognize or any rule that fails it returns ``None`` and the per-agent path reads the
document again, so every error message is the per-agent path's.
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any

import numpy as np

from pivotal.arrays import FloatArray, IntArray
from pivotal.markets.curves import (
    MAX_MAGNITUDE,
    MIN_MAGNITUDE,
    Curve,
    CurveKind,
    Role,
    piecewise_linear,
)

LINEAR, QUADRATIC, PIECEWISE = 0, 1, 2
_KIND_OF = {CurveKind.LINEAR: LINEAR, CurveKind.QUADRATIC: QUADRATIC}
_KIND_NAME = {
    "linear": LINEAR,
    "quadratic": QUADRATIC,
    "piecewise_linear": PIECEWISE,
}
_EXACT_INT = 2**52  # integers below this (and their differences) are exact as floats


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a large market is read, solved and written
    (the CLI's run, a call's close): its millions of dictionaries and lists have no cycles, and
    the collector's repeated passes over them took more time than the parsing itself (6.7 s of
    CPU against 1.3 s for a 10^6-agent file)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to serve every allocation below 2 GiB from its heap and to keep
    freed memory for the next allocations of this process, instead of mapping each large block
    anew and returning it at once. A 10^6-agent market allocates and frees arrays of 8 MB and
    texts of 100 MB many times; returned each time, every page of the next one was faulted in
    again by the kernel (1.8 million page faults, 9 s of system time; 0.6 million and 2.5 s
    so). Returns whether the setting was applied (glibc on Linux only; elsewhere nothing)."""
    if sys.platform != "linux":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    largest = 2**31 - 1  # mallopt takes an int
    return bool(mallopt(M_MMAP_THRESHOLD, largest)) and bool(mallopt(M_TRIM_THRESHOLD, largest))


@dataclass(frozen=True)
class CurveTable:
    """Closed-form curves of ``n`` agents as columns (agent order).

    ``kind``: 0 linear, 1 quadratic, 2 piecewise-linear. The points of agent ``i`` (piecewise
    only) are ``(pq[k], pv[k])`` for ``offsets[i] <= k < offsets[i + 1]``.
    """

    names: list[str]
    sign: FloatArray
    kind: IntArray
    a: FloatArray
    b: FloatArray
    capacity: FloatArray
    offsets: IntArray
    pq: FloatArray
    pv: FloatArray

    @property
    def n(self) -> int:
        """Number of agents."""
        return len(self.names)

    @classmethod
    def from_curves(cls, names: list[str], curves: list[Curve]) -> CurveTable:
        """Columns of closed-form curves (a ``marginal`` curve raises ``ValueError``)."""
        n = len(curves)
        kind = np.zeros(n, dtype=np.int64)
        a, b, cap = np.zeros(n), np.zeros(n), np.zeros(n)
        counts = np.zeros(n, dtype=np.int64)
        pq: list[float] = []
        pv: list[float] = []
        for i, c in enumerate(curves):
            cap[i] = c.capacity
            if c.kind is CurveKind.PIECEWISE_LINEAR:
                kind[i] = PIECEWISE
                counts[i] = len(c.points)
                pq.extend(q for q, _ in c.points)
                pv.extend(v for _, v in c.points)
            elif c.kind in _KIND_OF:
                kind[i] = _KIND_OF[c.kind]
                a[i], b[i] = c.a, c.b
            else:
                raise ValueError("a 'marginal' curve has no columns")
        sign = np.array([c.sign for c in curves], dtype=np.float64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(names, sign, kind, a, b, cap, offsets, np.array(pq), np.array(pv))

    def curve(self, i: int) -> Curve:
        """Agent ``i``'s curve as an object (already validated: no checks again)."""
        role = Role.PRODUCER if self.sign[i] > 0 else Role.BUYER
        k = int(self.kind[i])
        cap = float(self.capacity[i])
        if k == PIECEWISE:
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            points = tuple(zip(self.pq[lo:hi].tolist(), self.pv[lo:hi].tolist(), strict=True))
            return Curve(CurveKind.PIECEWISE_LINEAR, role, cap, points=points)
        if k == QUADRATIC:
            return Curve(CurveKind.QUADRATIC, role, cap, a=float(self.a[i]), b=float(self.b[i]))
        return Curve(CurveKind.LINEAR, role, cap, a=float(self.a[i]))

    # -- the response as pieces -------------------------------------------------------------
    def _segments(self) -> tuple[IntArray, IntArray]:
        """Start index (into ``pq``) and owner of every piecewise-linear segment, in order."""
        counts = np.diff(self.offsets)
        point_owner = np.repeat(np.arange(self.n, dtype=np.int64), counts)
        starts = np.flatnonzero(
            np.arange(self.pq.size, dtype=np.int64) + 1 < self.offsets[point_owner + 1]
        )
        return starts, point_owner[starts]

    def pieces(self) -> tuple[FloatArray, FloatArray, FloatArray, IntArray]:
        """``(t0, t1, size, owner)`` of every agent's pieces, in agent order and, within an
        agent, in the order of :meth:`pivotal.markets.curves.Curve.pieces` (same arithmetic)."""
        s = self.sign
        positive = self.capacity > 0
        pwl = self.kind == PIECEWISE
        starts, seg_owner = self._segments()
        count = np.where(positive, np.where(pwl, np.maximum(np.diff(self.offsets) - 1, 0), 1), 0)
        first = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
        total = int(count.sum())
        t0, t1, size = np.zeros(total), np.zeros(total), np.zeros(total)
        owner = np.repeat(np.arange(self.n, dtype=np.int64), count)
        single = positive & ~pwl
        at = first[single]
        start = s[single] * self.a[single]
        ramp = (self.kind[single] == QUADRATIC) & (self.b[single] != 0)
        t0[at] = start
        t1[at] = np.where(ramp, start + 2.0 * self.b[single] * self.capacity[single], start)
        size[at] = self.capacity[single]
        keep = positive[seg_owner]
        starts, seg_owner = starts[keep], seg_owner[keep]
        at = first[seg_owner] + (starts - self.offsets[seg_owner])
        dq = self.pq[starts + 1] - self.pq[starts]
        t = s[seg_owner] * (self.pv[starts + 1] - self.pv[starts]) / dq
        t0[at] = t
        t1[at] = t
        size[at] = dq
        return t0, t1, size, owner

    # -- values ------------------------------------------------------------------------------
    def values(self, q: FloatArray) -> FloatArray:
        """Every agent's cost or benefit at its quantity ``q[i]`` (as :meth:`Curve.value`)."""
        q = np.minimum(np.maximum(q, 0.0), self.capacity)
        out = np.where(
            self.kind == QUADRATIC, self.a * q + self.sign * self.b * q * q, self.a * q
        ).astype(np.float64)
        pwl = np.flatnonzero(self.kind == PIECEWISE)
        if pwl.size == 0:
            return out
        counts = np.diff(self.offsets)
        point_owner = np.repeat(np.arange(self.n, dtype=np.int64), counts)
        not_first = np.arange(self.pq.size) > self.offsets[point_owner]
        # segments whose right end lies below q come before q's segment
        below = not_first & (self.pq < q[point_owner])
        before = np.bincount(point_owner[below], minlength=self.n)[pwl]
        lo = self.offsets[pwl]
        n_seg = counts[pwl] - 1
        inside = before < n_seg
        k = lo + np.minimum(before, n_seg - 1)
        q0, v0, q1, v1 = self.pq[k], self.pv[k], self.pq[k + 1], self.pv[k + 1]
        qi = q[pwl]
        interp = v0 + (v1 - v0) * (qi - q0) / (q1 - q0)
        out[pwl] = np.where(inside, interp, self.pv[self.offsets[pwl + 1] - 1])
        return out

    # -- the JSON form -----------------------------------------------------------------------
    def entries(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The producers' and buyers' entries of the JSON input format, in agent order."""
        names = self.names
        kinds = self.kind.tolist()
        a, b, cap = self.a.tolist(), self.b.tolist(), self.capacity.tolist()
        producer = (self.sign > 0).tolist()
        offsets = self.offsets.tolist()
        pq, pv = self.pq.tolist(), self.pv.tolist()
        producers: list[dict[str, Any]] = []
        buyers: list[dict[str, Any]] = []
        for i, k in enumerate(kinds):
            if k == PIECEWISE:
                lo, hi = offsets[i], offsets[i + 1]
                curve: dict[str, Any] = {
                    "kind": "piecewise_linear",
                    "points": list(map(list, zip(pq[lo:hi], pv[lo:hi], strict=True))),
                }
            elif k == LINEAR:
                curve = {"kind": "linear", "a": a[i]}
            else:
                curve = {"kind": "quadratic", "a": a[i], "b": b[i]}
            if producer[i]:
                producers.append({"name": names[i], "cost": curve, "capacity": cap[i]})
            else:
                buyers.append({"name": names[i], "benefit": curve, "capacity": cap[i]})
        return producers, buyers

    def canonical_json(self) -> str:
        """:func:`pivotal.results.canonical_json` of the JSON form (:meth:`entries`), built as
        text: the same characters (sorted keys, no spaces, ``repr`` of each float, names
        ASCII-escaped) without the generic encoder's walk over 10^6 dictionaries."""
        quote = encode_basestring_ascii
        names = self.names
        kinds = self.kind.tolist()
        a, b, cap = self.a.tolist(), self.b.tolist(), self.capacity.tolist()
        offsets = self.offsets.tolist()
        pq, pv = self.pq.tolist(), self.pv.tolist()
        producer = (self.sign > 0).tolist()
        producers: list[str] = []
        buyers: list[str] = []
        for i, k in enumerate(kinds):
            if k == PIECEWISE:
                points = ",".join(
                    f"[{pq[j]!r},{pv[j]!r}]" for j in range(offsets[i], offsets[i + 1])
                )
                curve = f'{{"kind":"piecewise_linear","points":[{points}]}}'
            elif k == LINEAR:
                curve = f'{{"a":{a[i]!r},"kind":"linear"}}'
            else:
                curve = f'{{"a":{a[i]!r},"b":{b[i]!r},"kind":"quadratic"}}'
            if producer[i]:
                producers.append(
                    f'{{"capacity":{cap[i]!r},"cost":{curve},"name":{quote(names[i])}}}'
                )
            else:
                buyers.append(
                    f'{{"benefit":{curve},"capacity":{cap[i]!r},"name":{quote(names[i])}}}'
                )
        return '{"buyers":[' + ",".join(buyers) + '],"producers":[' + ",".join(producers) + "]}"


def _number(x: Any) -> bool:
    t = type(x)
    return t is float or (t is int and -_EXACT_INT < x < _EXACT_INT)


def _magnitude_ok(x: FloatArray) -> bool:
    m = np.abs(x)
    return bool(
        np.all(np.isfinite(x)) and np.all((m == 0) | ((m >= MIN_MAGNITUDE) & (m <= MAX_MAGNITUDE)))
    )


def table_from_document(doc: Any) -> CurveTable | None:
    """Columns of a market document, or ``None`` when the per-agent path must read it (see the
    module docstring). The table lists producers then buyers, in file order."""
    if type(doc) is not dict or len(doc) != 2:
        return None
    producers, buyers = doc.get("producers"), doc.get("buyers")
    if type(producers) is not list or type(buyers) is not list:
        return None
    names: list[str] = []
    kinds: list[int] = []
    av: list[Any] = []
    bv: list[Any] = []
    caps: list[Any] = []  # None: a piecewise curve without capacity
    counts: list[int] = []
    pts: list[Any] = []
    append_name, append_kind = names.append, kinds.append
    append_a, append_b, append_cap = av.append, bv.append, caps.append
    append_count, extend_pts = counts.append, pts.extend
    kind_of = _KIND_NAME.get
    for key, entries in (("cost", producers), ("benefit", buyers)):
        for e in entries:
            if type(e) is not dict:
                return None
            name, curve, cap = e.get("name"), e.get(key), e.get("capacity")
            if len(e) != (3 if "capacity" in e else 2) or type(name) is not str or not name:
                return None
            if type(curve) is not dict or (cap is not None and not _number(cap)):
                return None
            kind_name = curve.get("kind")
            k = kind_of(kind_name) if type(kind_name) is str else None
            if k == PIECEWISE:
                points = curve.get("points")
                if len(curve) != 2 or type(points) is not list or len(points) < 2:
                    return None
                for p in points:
                    if type(p) is not list or len(p) != 2:
                        return None
                extend_pts(points)
                append_count(len(points))
                append_a(0.0)
                append_b(0.0)
            elif k == LINEAR:
                a = curve.get("a")
                if len(curve) != 2 or not _number(a) or cap is None:
                    return None
                append_count(0)
                append_a(a)
                append_b(0.0)
            elif k == QUADRATIC:
                a, b = curve.get("a"), curve.get("b")
                if len(curve) != 3 or not _number(a) or not _number(b) or cap is None:
                    return None
                append_count(0)
                append_a(a)
                append_b(b)
            else:
                return None
            append_name(name)
            append_kind(k)
            append_cap(cap)
    n_producers = len(producers)
    if not n_producers or not buyers or len(set(names)) != len(names):
        return None
    n = len(names)
    try:
        flat = np.array(pts, dtype=np.float64).reshape(-1, 2) if pts else np.zeros((0, 2))
    except (TypeError, ValueError):
        return None
    if pts and not all(_number(x) for p in pts for x in p):
        return None
    pq, pv = np.ascontiguousarray(flat[:, 0]), np.ascontiguousarray(flat[:, 1])
    kind = np.array(kinds, dtype=np.int64)
    a = np.array(av, dtype=np.float64)
    b = np.array(bv, dtype=np.float64)
    given = np.array([c is not None for c in caps])
    cap_given = np.array([0.0 if c is None else c for c in caps], dtype=np.float64)
    sign = np.concatenate([np.ones(n_producers), -np.ones(n - n_producers)])
    count = np.array(counts, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    if not (_magnitude_ok(a) and _magnitude_ok(b) and _magnitude_ok(cap_given)):
        return None
    if not (_magnitude_ok(pq) and _magnitude_ok(pv)):
        return None
    if np.any(cap_given < 0) or np.any(b < 0):
        return None
    pwl = kind == PIECEWISE
    capacity = cap_given.copy()
    if pwl.any():
        point_owner = np.repeat(np.arange(n, dtype=np.int64), count)
        first = offsets[:-1][pwl]
        if np.any(pq[first] != 0) or np.any(pv[first] != 0):
            return None
        not_first = np.arange(pq.size) > offsets[point_owner]
        dq = pq[1:] - pq[:-1]
        dv = pv[1:] - pv[:-1]
        seg = not_first[1:]  # segment j runs from point j to point j + 1 of the same agent
        if np.any(dq[seg] <= 0):
            return None
        slope = np.where(seg, dv / np.where(seg, dq, 1.0), 0.0)
        # consecutive slopes of one agent: segments j - 1 and j, both inside the agent
        pair = seg[1:] & seg[:-1]
        prev, cur = slope[:-1][pair], slope[1:][pair]
        producer = (sign[point_owner[1:][:-1]] > 0)[pair]
        worse = np.where(producer, cur < prev, cur > prev)
        close = np.abs(cur - prev) <= np.maximum(
            1e-12 * np.maximum(np.abs(cur), np.abs(prev)), 1e-12
        )
        if np.any(worse & ~close):
            return None
        last_q = pq[offsets[1:][pwl] - 1]
        pwl_given = given[pwl]
        if np.any(pwl_given & (cap_given[pwl] > last_q)):
            return None
        capacity[pwl] = np.where(pwl_given, cap_given[pwl], last_q)
        cut = np.flatnonzero(pwl)[pwl_given & (cap_given[pwl] < last_q)]
        if cut.size:
            return _with_cuts(names, sign, kind, a, b, capacity, offsets, pq, pv, cut)
    return CurveTable(names, sign, kind, a, b, capacity, offsets, pq, pv)


def _with_cuts(
    names: list[str],
    sign: FloatArray,
    kind: IntArray,
    a: FloatArray,
    b: FloatArray,
    capacity: FloatArray,
    offsets: IntArray,
    pq: FloatArray,
    pv: FloatArray,
    cut: IntArray,
) -> CurveTable:
    """The table with the piecewise curves in ``cut`` (capacity below the last point) cut by
    :func:`pivotal.markets.curves.piecewise_linear` itself (rare: one call per such curve)."""
    point_lists: list[list[tuple[float, float]]] = []
    kind, a, capacity = kind.copy(), a.copy(), capacity.copy()
    cut_set = set(cut.tolist())
    for i in range(len(names)):
        lo, hi = int(offsets[i]), int(offsets[i + 1])
        pts = list(zip(pq[lo:hi].tolist(), pv[lo:hi].tolist(), strict=True))
        if i in cut_set:
            role = Role.PRODUCER if sign[i] > 0 else Role.BUYER
            c = piecewise_linear(role, [list(p) for p in pts], float(capacity[i]))
            if c.kind is CurveKind.LINEAR:
                kind[i], a[i], pts = LINEAR, c.a, []
            else:
                pts = list(c.points)
            capacity[i] = c.capacity
        point_lists.append(pts)
    count = np.array([len(p) for p in point_lists], dtype=np.int64)
    flat = [p for pts in point_lists for p in pts]
    new_q = np.array([q for q, _ in flat], dtype=np.float64)
    new_v = np.array([v for _, v in flat], dtype=np.float64)
    new_offsets = np.concatenate([[0], np.cumsum(count)]).astype(np.int64)
    return CurveTable(names, sign, kind, a, b, capacity, new_offsets, new_q, new_v)


__all__ = ["CurveTable", "keep_freed_memory", "no_cycle_collection", "table_from_document"]
