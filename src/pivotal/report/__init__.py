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

from pivotal.display import Rounding, rounding_of
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
    note: str = ""


@dataclass(frozen=True)
class ReportFiles:
    """Where a report was written."""

    folder: Path
    index: Path
    images: tuple[Path, ...]
    report: Report


def finding(doc: dict[str, Any]) -> str:
    """The result's headline in one line (amounts rounded to the result's tolerance)."""
    kind = result_kind(doc)
    num = money(kind, doc).format
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


def money(kind: str, doc: dict[str, Any]) -> Rounding:
    """The display rounding of a result's amounts (see :mod:`pivotal.display`)."""
    if kind == "auction":
        return rounding_of(doc, doc["values"], doc["welfare"])
    if kind == "market":
        return rounding_of(doc, doc["values"], doc["transfers"], doc["welfare"])
    return rounding_of(doc, doc["costs"])


def _summary(kind: str, doc: dict[str, Any]) -> Table:
    num = money(kind, doc).format
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


def _when(stamp: Any) -> str:
    """An ISO time as ``2026-12-01 07:20 UTC``."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return "not recorded"


def _readable(value: Any) -> str:
    """A parameter or provenance value as text: numbers plainly, mappings as ``k = v`` lists."""
    if isinstance(value, dict):
        return ", ".join(f"{k} = {_readable(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple):
        return ", ".join(_readable(v) for v in value) or "-"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _inputs(kind: str, doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    from datetime import UTC, datetime

    prov = doc.get("provenance") or {}
    source = doc.get("source") or {}
    out = [
        ("input", str(source.get("input") or "not recorded")),
        ("computed", _when(source["computed"]) if "computed" in source else "not recorded"),
        ("report written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("input SHA-256", str(prov.get("input_sha256") or "not recorded")),
    ]
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
    for name, value in (prov.get("parameters") or {}).items():
        out.append((f"parameter {name}", _readable(value)))
    return tuple(out)


def _provenance(doc: dict[str, Any]) -> dict[str, str]:
    """The provenance in readable form (parameters are listed with the input)."""
    prov = doc.get("provenance") or {}
    rows = {}
    for key, value in prov.items():
        if key == "parameters":
            continue
        if key == "seconds" and isinstance(value, int | float):
            rows["time"] = f"{value:.3g} s"
        elif key == "tolerances" and isinstance(value, dict):
            rows["tolerances"] = (
                f"abs {_readable(value.get('abs_tol'))}, rel {_readable(value.get('rel_tol'))}"
            )
        else:
            rows[key.replace("_", " ")] = _readable(value)
    return rows


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
        provenance=_provenance(doc),
        note=money(kind, doc).note(),
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
            note=report.note,
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
