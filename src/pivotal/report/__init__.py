"""Reports: figures (static and interactive) and a one-page HTML summary of a result document.

``build_report(doc)`` turns a result document (the JSON of ``pivotal auction run``, ``market
run`` or ``negotiate run``) into a :class:`Report`; ``write_report(doc, folder)`` writes
``index.html``, one PNG and one SVG per figure and ``figures.json`` (the plotted numbers).
Reports only read documents: each kind's view (:mod:`pivotal.report.kinds`) takes what it
shows from the document, which the run computed once; nothing here solves anything (an
import-layering contract forbids it). Re-checking a result is :mod:`pivotal.verify`'s job.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivotal.fileio import check_output_folder
from pivotal.report.documents import result_kind
from pivotal.report.figures import Figure
from pivotal.report.html import report_page
from pivotal.report.kinds import VIEWS
from pivotal.report.render import save_static
from pivotal.report.view import KindView, Table

__all__ = ["Report", "ReportFiles", "build_report", "finding", "write_report"]


@dataclass(frozen=True)
class Report:
    """What a report shows."""

    kind: str
    title: str
    finding: str
    summary: Table
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
    return VIEWS[result_kind(doc)].finding(doc)


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


def _inputs(view: KindView, doc: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    from datetime import UTC, datetime

    prov = doc.get("provenance") or {}
    source = doc.get("source") or {}
    out = [
        ("input", str(source.get("input") or "not recorded")),
        ("computed", _when(source["computed"]) if "computed" in source else "not recorded"),
        ("report written", datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("input SHA-256", str(prov.get("input_sha256") or "not recorded")),
    ]
    if isinstance(doc.get("input"), dict):
        out += view.input_rows(doc)
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
    """Figures, summary and headline of a result document (read only: nothing is solved)."""
    kind = result_kind(doc)
    view = VIEWS[kind]
    return Report(
        kind=kind.value,
        title=view.title(doc),
        finding=view.finding(doc),
        summary=view.summary(doc),
        figures=tuple(view.figures(doc)),
        inputs=_inputs(view, doc),
        provenance=_provenance(doc),
        note=view.money(doc).note(),
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
