"""Numbers for people: amounts rounded to the tolerance their result was computed to.

A result records its tolerances (``provenance.tolerances``: ``abs_tol``, ``rel_tol``); two amounts
agree when they differ by at most ``abs_tol + rel_tol * scale``. Tables and reports show no digit
finer than that step, show an amount within the step of zero as ``0`` (never ``-0``), and say
which step they used; the JSON documents keep full precision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["Rounding", "rounding_of"]


@dataclass(frozen=True)
class Rounding:
    """Display rounding for the amounts of one result.

    ``step = abs_tol + rel_tol * scale``, where ``scale`` is the largest amount of the result
    (its amounts are differences of amounts of that size, so their error scales with it).
    """

    abs_tol: float = 1e-6
    rel_tol: float = 1e-9
    scale: float = 0.0

    @property
    def step(self) -> float:
        """The smallest difference the result resolves."""
        return self.abs_tol + self.rel_tol * abs(self.scale)

    @property
    def decimals(self) -> int:
        """Decimal places that are not noise (0 when the step is 1 or more)."""
        return max(0, min(12, math.ceil(-math.log10(self.step))))

    def format(self, x: float) -> str:
        """``x`` with thousands separators and no digit finer than the step; ``0`` within it."""
        if not math.isfinite(x):
            return str(x)
        if abs(x) <= self.step:
            return "0"
        text = f"{x:,.{self.decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text in {"-0", "0"} else text

    def is_zero(self, x: float) -> bool:
        """Whether ``x`` is zero within the step."""
        return abs(x) <= self.step

    def note(self) -> str:
        """One line saying how numbers were rounded."""
        if self.rel_tol and self.scale:
            how = (
                f"abs {self.abs_tol:g} + rel {self.rel_tol:g} x {_plain(self.scale)} = "
                f"{self.step:.2g}"
            )
        else:
            how = f"{self.step:.2g}"
        return (
            f"amounts rounded to the result's tolerance ({how}); amounts within it of 0 show as 0"
        )


def _plain(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _magnitudes(values: Iterable[Any]) -> Iterable[float]:
    for v in values:
        if isinstance(v, dict):
            yield from _magnitudes(v.values())
        elif isinstance(v, list | tuple):
            yield from _magnitudes(v)
        elif isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
            yield abs(float(v))


def rounding_of(doc: dict[str, Any], *amounts: Any) -> Rounding:
    """The rounding for a result document: its recorded tolerances (pivotal's defaults when it
    records none) at the scale of the largest of ``amounts`` (numbers, lists or dicts of them)."""
    tol = (doc.get("provenance") or {}).get("tolerances") or {}
    scale = max(_magnitudes(amounts), default=0.0)
    return Rounding(
        abs_tol=float(tol.get("abs_tol", 1e-6)),
        rel_tol=float(tol.get("rel_tol", 1e-9)),
        scale=scale,
    )
