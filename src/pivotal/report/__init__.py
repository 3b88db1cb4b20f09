"""Reports: figures (static and interactive), a one-page HTML summary, and verification.

``build_report(doc)`` turns a result document (the JSON of ``pivotal auction run``, ``market
run`` or ``negotiate run``) into a :class:`Report`; ``write_report(doc, folder)`` writes
``index.html``, one PNG and one SVG per figure and ``figures.json`` (the plotted numbers).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivotal.fileio import check_output_folder
from pivotal.report.documents import (
    auction_comparison,
    market_curves,
    negotiation_geography,
    result_kind,
)
from pivotal.report.figures import (
    Figure,
    auction_figures,
    market_figures,
    negotiation_figures,
    num,
)
from pivotal.report.html import report_page
from pivotal.report.render import save_static

__all__ = ["Report", "ReportFiles", "build_report", "finding", "write_report"]


@dataclass(frozen=True)
class Report:
    """What a report shows."""

    kind: str
    title: str
    finding: str
    summary: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]
    figures: tuple[Figure, ...]
    inputs: tuple[tuple[str, str], ...]
    provenance: dict[str, Any]


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    folder: Path
    index: Path
    images: tuple[Path, ...]
    report: Report


def finding(doc: dict[str, Any]) -> str:
    """The result's headline in one line."""
    kind = result_kind(doc)
    if kind == "auction":
        seq = (doc.get("comparison") or {}).get("sequential_second_price")
        line = f"{doc['mechanism']}: welfare {num(doc['welfare'])}, revenue {num(doc['revenue'])}"
        if seq is not None:
            line += (
                f"; the sequential auction raises {num(seq['revenue'])} with welfare "
                f"{num(seq['welfare'])}"
            )
        return line
    if kind == "market":
        w = doc.get("withholding") or {}
        line = (
            f"clearing price {num(doc['price'])}, {num(doc['traded'])} units traded; VCG "
            f"deficit {num(doc['budget'])}"
        )
        if w:
            line += (
                f"; {w['producer']} gains {num(w['profit_gain'])} by withholding at the uniform "
                f"price, {num(w['vcg_utility_at_best_withholding'] - w['vcg_utility_truthful'])} "
                "under VCG"
            )
        return line
    saving = doc["status_quo_cost"] - doc["total_cost"]
    transfers = ", ".join(f"{p} {num(t)}" for p, t in doc["transfers"].items())
    return (
        f"the joint plan saves {num(saving)} against the status quo in {doc['rounds']} rounds; "
        f"transfers {transfers}"
    )


Table = tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]


def _summary(kind: str, doc: dict[str, Any]) -> Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    if kind == "auction":
        header = ("bidder", "wins", "value", "payment", "utility")
        rows = tuple(
            (
                b,
                ", ".join(doc["allocation"].get(b, [])) or "-",
                num(doc["values"][b]),
                num(doc["payments"][b]),
                num(doc["utilities"][b]),
            )
            for b in doc["payments"]
        )
        rows += (("total", "", num(doc["welfare"]), num(doc["revenue"]), ""),)
        return header, rows
    if kind == "market":
        header = ("agent", "role", "quantity", "VCG transfer", "uniform-price transfer", "utility")
        uniform = doc["uniform_price"]["transfers"]
        rows = tuple(
            (
                a,
                doc["roles"][a],
                num(doc["quantities"][a]),
                num(doc["transfers"][a]),
                num(uniform[a]),
                num(doc["utilities"][a]),
            )
            for a in doc["transfers"]
        )
        return header, rows
    header = ("party", "cost (status quo)", "cost (joint)", "transfer", "gain")
    rows = tuple(
        (
            p,
            num(doc["costs"][p]["status_quo"]),
            num(doc["costs"][p]["joint"]),
            num(doc["transfers"][p]),
            num(doc["gains"][p]),
        )
        for p in doc["parties"]
    )
    rows += (("total", num(doc["status_quo_cost"]), num(doc["total_cost"]), "", ""),)
    return header, rows


def _inputs(kind: str, doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    prov = doc.get("provenance") or {}
    out = [("input SHA-256", str(prov.get("input_sha256") or "not recorded"))]
    data = doc.get("input")
    if isinstance(data, dict):
        if kind == "auction":
            out += [
                ("items", str(len(data.get("items", [])))),
                ("bids", str(len(data.get("bids", [])))),
            ]
        elif kind == "market":
            out += [
                ("producers", str(len(data.get("producers", [])))),
                ("buyers", str(len(data.get("buyers", [])))),
            ]
        else:
            out += [
                ("scenario", str(data.get("name"))),
                ("products", str(len(data.get("products", [])))),
                ("weeks", str(data.get("weeks"))),
                ("vendors", str(len(data.get("vendors", [])))),
            ]
    return tuple(out)


def build_report(doc: dict[str, Any]) -> Report:
    """Figures, summary and headline of a result document."""
    kind = result_kind(doc)
    headline = finding(doc)
    if kind == "auction":
        comparison = auction_comparison(doc)
        figures = auction_figures(doc, comparison)
        title = f"Auction report ({doc['mechanism']})"
        if comparison["vcg_in_core"]:
            headline += "; the VCG outcome is in the core"
        else:
            b = comparison["blocking"]
            headline += (
                f"; VCG is outside the core (bidders {', '.join(b['bidders'])} offer "
                f"{num(b['offer'])}), the core rule raises {num(comparison['core']['revenue'])}"
            )
    elif kind == "market":
        figures = market_figures(doc, market_curves(doc))
        title = "Procurement market report"
    else:
        figures = negotiation_figures(doc, negotiation_geography(doc))
        title = f"Negotiation report ({doc.get('scenario', 'negotiation')})"
    return Report(
        kind=kind,
        title=title,
        finding=headline,
        summary=_summary(kind, doc),
        figures=tuple(figures),
        inputs=_inputs(kind, doc),
        provenance=dict(doc.get("provenance") or {}),
    )


def write_report(doc: dict[str, Any], folder: Path) -> ReportFiles:
    """Write the report into ``folder`` (created if missing, its parent never; files appear
    only once all are written)."""
    check_output_folder(folder)
    report = build_report(doc)
    staging = Path(tempfile.mkdtemp(prefix=".report-", dir=folder.parent))
    try:
        images = []
        for fig in report.figures:
            paths = save_static(fig, staging)
            images.append(paths["png"])
        (staging / "figures.json").write_text(
            json.dumps(
                {f.key: {"title": f.title, "series": f.data()} for f in report.figures}, indent=1
            )
        )
        page = report_page(
            report.title,
            report.finding,
            report.summary,
            report.figures,
            report.inputs,
            report.provenance,
        )
        (staging / "index.html").write_text(page, encoding="utf-8")
        folder.mkdir(exist_ok=True)
        for path in staging.iterdir():
            shutil.move(str(path), folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ReportFiles(
        folder=folder,
        index=folder / "index.html",
        images=tuple(folder / p.name for p in images),
        report=report,
    )
