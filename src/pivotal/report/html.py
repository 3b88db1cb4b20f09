"""Self-contained HTML: the one-page report and the coordinator's live status page.

Both pages embed plotly.js inline (no network access needed, no external URL; the coordinator
serves it to its live page as a cached asset instead) and record any script error, and anything
a content security policy blocked, in ``window.__pivotalErrors`` (shown in ``#pivotal-errors``
once the page has loaded), so a headless browser can check that a page rendered cleanly.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pivotal.report.figures import PALETTE, Figure
from pivotal.report.render import plotly_div, plotly_js

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; color: #1a1a1a; line-height: 1.45; padding: 0 1rem; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; }
p.finding { font-size: 1.1rem; background: #eef5fb; border-left: 4px solid #0072B2;
            padding: 0.6rem 0.9rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { border-bottom: 2px solid #555; }
figure { margin: 1.5rem 0; }
figcaption { color: #444; font-size: 0.9rem; }
code { font-size: 0.85rem; }
#pivotal-errors { display: none; }
"""

_ERROR_HOOK = """
window.__pivotalErrors = [];
function __pivotalRecord(message) {
  window.__pivotalErrors.push(String(message));
  var out = document.getElementById("pivotal-errors");
  if (out) { out.textContent = JSON.stringify(window.__pivotalErrors); }
}
window.addEventListener("error", function (e) { __pivotalRecord(e.message); });
document.addEventListener("securitypolicyviolation", function (e) {
  __pivotalRecord("blocked by the content security policy: " + e.violatedDirective + " " +
                  e.blockedURI);
});
(function () {
  var original = console.error;
  console.error = function () {
    __pivotalRecord(Array.prototype.join.call(arguments, " "));
    original.apply(console, arguments);
  };
})();
window.addEventListener("load", function () {
  document.getElementById("pivotal-errors").textContent = JSON.stringify(window.__pivotalErrors);
});
"""


@lru_cache(maxsize=1)
def _plotly_js() -> str:
    return plotly_js()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _head(title: str, plotly_src: str | None = None) -> list[str]:
    """The start of a page up to ``<body>``: styles, the error hook and plotly.js (inline, or
    from ``plotly_src``)."""
    plotly = (
        f"<script>{_plotly_js()}</script>"
        if plotly_src is None
        else (f'<script src="{html.escape(plotly_src)}"></script>')
    )
    return [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        f"<script>{_ERROR_HOOK}</script>",
        plotly,
        "</head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]


def report_page(
    title: str,
    finding: str,
    summary: tuple[Sequence[str], Sequence[Sequence[str]]],
    figures: Sequence[Figure],
    inputs: Sequence[tuple[str, str]],
    provenance: dict[str, Any],
    *,
    note: str = "",
) -> str:
    """The report page (figures interactive; their PNG/SVG files sit beside it)."""
    parts = [
        *_head(title),
        f'<p class="finding">{html.escape(finding)}</p>',
        "<h2>Summary</h2>",
        _table(*summary),
        f'<p class="note">{html.escape(note)}</p>' if note else "",
        "<h2>Figures</h2>",
    ]
    for fig in figures:
        parts.append(f'<figure id="figure-{html.escape(fig.key)}">')
        parts.append(plotly_div(fig))
        links = f'<a href="{fig.key}.png">PNG</a> · <a href="{fig.key}.svg">SVG</a>'
        parts.append(f"<figcaption>{html.escape(fig.caption)} Static: {links}</figcaption>")
        parts.append("</figure>")
    parts.append("<h2>Input and parameters</h2>")
    parts.append(_table(("", "value"), inputs))
    parts.append("<h2>Provenance</h2>")
    rows = []
    for key, value in provenance.items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        rows.append((key, text))
    parts.append(_table(("field", "value"), rows))
    parts.append('<pre id="pivotal-errors"></pre>')
    parts.append("</body></html>")
    return "\n".join(parts)


_LIVE_SCRIPT = """
var colors = %(colors)s;
function render(s) {
  document.getElementById("state").textContent = s.status;
  document.getElementById("phase").textContent = s.phase + " round " + s.round;
  document.getElementById("waiting").textContent = s.waiting_for.join(", ") || "-";
  document.getElementById("message").textContent = s.message || "";
  var phases = {};
  s.residuals.forEach(function (r) { (phases[r.phase] = phases[r.phase] || []).push(r); });
  var traces = [];
  Object.keys(phases).forEach(function (phase, i) {
    var rs = phases[phase];
    var x = rs.map(function (r) { return r.round + 1; });
    traces.push({x: x, y: rs.map(function (r) { return r.primal_ratio; }),
                 name: phase + " primal",
                 mode: "lines", line: {color: colors[(2 * i) %% colors.length]}});
    traces.push({x: x, y: rs.map(function (r) { return r.dual_ratio; }), name: phase + " dual",
                 mode: "lines", line: {color: colors[(2 * i + 1) %% colors.length], dash: "dot"}});
  });
  Plotly.react("residuals", traces, {
    title: {text: "Residuals per round (" + s.status + ")"}, template: "simple_white",
    xaxis: {title: {text: "round"}},
    yaxis: {title: {text: "residual / tolerance (log scale; converged at 1)"}, type: "log"},
    shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1,
              line: {color: "#888", width: 1, dash: "dash"}}],
    height: 480
  }, {displaylogo: false, responsive: true});
}
var seen = null;
function poll() {
  // long poll: the reply comes when a round completes (or after 5 s), so the page
  // refreshes once per round
  var url = seen === null ? "status" : "status?since=" + seen + "&wait=5";
  fetch(url).then(function (r) { return r.json(); }).then(function (s) {
    render(s);
    seen = s.residuals.length;
    if (s.status !== "done" && s.status !== "failed") { setTimeout(poll, %(every)d); }
  }).catch(function () { setTimeout(poll, 2000); });
}
window.addEventListener("load", poll);
"""


def live_status_page(name: str, every_ms: int = 50, *, plotly_src: str | None = None) -> str:
    """The coordinator's ``/`` page: status and the residual plot, refreshed from ``/status``
    (plotly.js inline, or from ``plotly_src``: the coordinator serves it as a cached asset)."""
    script = _LIVE_SCRIPT % {"colors": json.dumps(list(PALETTE)), "every": every_ms}
    title = f"Negotiation {name}: live status"
    return "\n".join(
        [
            *_head(title, plotly_src),
            "<table><tbody>",
            '<tr><td>status</td><td id="state">-</td></tr>',
            '<tr><td>step</td><td id="phase">-</td></tr>',
            '<tr><td>waiting for</td><td id="waiting">-</td></tr>',
            '<tr><td>message</td><td id="message"></td></tr>',
            "</tbody></table>",
            '<div id="residuals" class="plot"></div>',
            "<p>Only progress is shown here: no plans, prices or costs.</p>",
            '<pre id="pivotal-errors"></pre>',
            f"<script>{script}</script>",
            "</body></html>",
        ]
    )
