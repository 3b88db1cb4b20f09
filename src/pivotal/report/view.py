"""What the report of one kind of result is made of: one :class:`KindView` per mechanism,
registered in :mod:`pivotal.report.kinds`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pivotal.display import Rounding
from pivotal.report.figures import Figure

Document = dict[str, Any]
Table = tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]
"""A header and its rows, as text."""


@dataclass(frozen=True)
class KindView:
    """How a report shows one kind of result; every function reads the document only.

    Attributes
    ----------
    title:
        The report's title.
    money:
        The display rounding of the result's amounts (see :mod:`pivotal.display`).
    finding:
        The headline in one line, amounts rounded by ``money``.
    summary:
        The per-participant table.
    input_rows:
        What the input holds, as ``(label, value)`` rows (counts of items, bids, agents, ...).
    figures:
        The figures, as data (:class:`~pivotal.report.figures.Figure`).
    """

    title: Callable[[Document], str]
    money: Callable[[Document], Rounding]
    finding: Callable[[Document], str]
    summary: Callable[[Document], Table]
    input_rows: Callable[[Document], list[tuple[str, str]]]
    figures: Callable[[Document], list[Figure]]
