"""Reports, figures, verification, tutorials and the pages in a real (headless) browser.

References: the seed auction's published numbers (``tests/cases/seed_vcg_3x4.ref.json`` and the
seed README: blocking coalition {1, 4} offering 19, VCG-nearest payments 11.5 and 7.5), the seed
market's closed form (supply ``q = p - 2``, demand ``q = 10 - p``, clearing at p = 6, q = 4), and
for every other series the numbers of the result file the report was drawn from.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from _service import deploy
from conftest import REPO
from pivotal.negotiation.scenario import truck_example

CLI = [sys.executable, "-m", "pivotal"]


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, check=False, cwd=cwd or REPO
    )


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], Path]]:
    root = tmp_path_factory.mktemp("reports")
    jobs = {
        "auction": ["auction", "run", "examples/seed_vcg_3x4.json"],
        "market": ["market", "run", "examples/market_seed.json"],
        "negotiation": ["negotiate", "run", "--scenario", "truck-example"],
    }
    out = {}
    for kind, args in jobs.items():
        proc = run(*args, "-o", str(root / f"{kind}.json"), "--report", str(root / kind))
        assert proc.returncode == 0, proc.stderr
        assert f"report: {root / kind / 'index.html'}" in proc.stderr.replace("\n", "")
        out[kind] = (json.loads((root / f"{kind}.json").read_text()), root / kind)
    return out


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def plotted(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "figures.json").read_text())
    return data


EXPECTED_FIGURES = {
    "auction": {"bidders", "core"},
    "market": {"supply_demand", "transfers", "withholding"},
    "negotiation": {"residuals", "prices", "waterfall", "map"},
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_FIGURES))
def test_every_figure_is_a_png_of_the_expected_size(reports: dict[str, Any], kind: str) -> None:
    _, folder = reports[kind]
    figures = plotted(folder)
    assert set(figures) == EXPECTED_FIGURES[kind]
    for key in figures:
        assert png_size(folder / f"{key}.png") == (1000, 600)
        assert "<svg" in (folder / f"{key}.svg").read_text()[:2000]


def test_auction_figures_plot_the_published_numbers(
    reports: dict[str, Any], shared_cases: Path
) -> None:
    doc, folder = reports["auction"]
    ref = json.loads((shared_cases / "seed_vcg_3x4.ref.json").read_text())
    series = plotted(folder)["bidders"]["series"]
    bidders = series["VCG payment"]["x"]
    assert series["VCG payment"]["y"] == [pytest.approx(ref["payments"][b]) for b in bidders]
    assert series["VCG payment"]["y"] == [doc["payments"][b] for b in bidders]
    values = dict(zip(bidders, series["value (VCG allocation)"]["y"], strict=True))
    assert values["2"] == ref["winner_values"]["2"] and values["3"] == ref["winner_values"]["3"]
    core = dict(zip(bidders, series["core payment (VCG-nearest)"]["y"], strict=True))
    assert core["2"] == pytest.approx(11.5, abs=1e-6) and core["3"] == pytest.approx(7.5, abs=1e-6)
    seq = doc["comparison"]["sequential_second_price"]["payments"]
    assert series["sequential payment"]["y"] == [seq[b] for b in bidders]
    polytope = plotted(folder)["core"]["series"]
    assert polytope["VCG payments"]["x"] == [9] and polytope["VCG payments"]["y"] == [5]
    assert polytope["core payments (VCG-nearest)"]["x"][0] == pytest.approx(11.5, abs=1e-6)
    area = polytope["core (payments no coalition blocks)"]
    sums = np.add(area["x"], area["y"])
    assert sums.min() == pytest.approx(19)  # bidders 1 and 4 offer 19
    assert min(area["x"]) == 9 and max(area["x"]) == 16  # VCG payment .. value of bidder 2
    assert min(area["y"]) == 5 and max(area["y"]) == 10
    assert "outside the core" in plotted(folder)["core"]["title"]


def test_market_figures_match_the_closed_form(reports: dict[str, Any]) -> None:
    doc, folder = reports["market"]
    figs = plotted(folder)
    sd = figs["supply_demand"]["series"]
    prices = np.array(sd["supply (aggregate marginal cost)"]["y"])
    supply = np.array(sd["supply (aggregate marginal cost)"]["x"])
    demand = np.array(sd["demand (aggregate marginal benefit)"]["x"])
    np.testing.assert_allclose(supply, np.clip(prices - 2, 0, 20), atol=1e-9)
    np.testing.assert_allclose(demand, np.clip(10 - prices, 0, 20), atol=1e-9)
    assert sd["clearing point"]["x"] == [pytest.approx(4)] and sd["clearing point"]["y"] == [
        pytest.approx(6)
    ]
    tr = figs["transfers"]["series"]
    agents = tr["VCG transfer"]["x"]
    assert tr["VCG transfer"]["y"] == [doc["transfers"][a] for a in agents]
    assert dict(zip(agents, tr["VCG transfer"]["y"], strict=True)) == {
        "maker": 32,
        "government": -16,
    }
    assert tr["uniform-price transfer"]["y"] == [
        doc["uniform_price"]["transfers"][a] for a in agents
    ]
    wh = figs["withholding"]["series"]
    curve = doc["withholding"]["curve"]
    assert wh["uniform-price profit"]["y"] == [c["uniform_profit"] for c in curve]
    assert wh["VCG utility"]["y"] == [c["vcg_utility"] for c in curve]
    assert wh["VCG utility"]["x"][-1] == pytest.approx(100)


def test_negotiation_figures_match_the_result(reports: dict[str, Any]) -> None:
    doc, folder = reports["negotiation"]
    figs = plotted(folder)
    res = figs["residuals"]["series"]
    assert res["primal residual"]["y"] == [r["primal"] for r in doc["residuals"]]
    assert res["dual residual"]["y"] == [r["dual"] for r in doc["residuals"]]
    assert len(res["primal residual"]["x"]) == doc["rounds"]
    prices = figs["prices"]["series"]
    assert prices and all(len(s["y"]) == doc["rounds"] for s in prices.values())
    steps = figs["waterfall"]["series"]["cost"]
    values = dict(zip(steps["x"], steps["y"], strict=True))
    for party in doc["parties"]:
        c = doc["costs"][party]
        assert values[f"{party}: status quo"] == pytest.approx(c["status_quo"])
        net = (
            values[f"{party}: status quo"]
            + values[f"{party}: plan change"]
            + values[f"{party}: transfer"]
        )
        assert net == pytest.approx(c["joint"] - doc["transfers"][party])
        # the retailer ends where it started (gain 0); the vendor keeps the saving
    assert values["retailer: status quo"] + values["retailer: plan change"] + values[
        "retailer: transfer"
    ] == pytest.approx(doc["costs"]["retailer"]["status_quo"], abs=1e-3)
    flows = figs["map"]["series"]
    joint = [name for name in flows if name.startswith("joint plan: vendor -> DAL")]
    assert joint and "(5,000 units)" in joint[0]
    assert any(name.startswith("status quo: vendor -> PHX") for name in flows)
    assert "DAL" in figs["map"]["title"]


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.plots: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href", "action", "data"):
            if a.get(key):
                self.urls.append(str(a[key]))
        if "plotly-graph-div" in (a.get("class") or ""):
            self.plots.append(str(a.get("id")))


@pytest.mark.parametrize("kind", sorted(EXPECTED_FIGURES))
def test_html_is_self_contained_with_one_plot_per_figure(
    reports: dict[str, Any], kind: str
) -> None:
    _, folder = reports[kind]
    parser = _Links()
    text = (folder / "index.html").read_text()
    parser.feed(text)
    parser.close()
    external = [u for u in parser.urls if u.startswith(("http:", "https:", "//"))]
    assert not external
    assert sorted(parser.plots) == sorted(f"plot-{k}" for k in plotted(folder))
    assert "<h2>Provenance</h2>" in text and "input SHA-256" in text


# ---------------------------------------------------------------------------------- browser
BROWSERS = (
    "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome",
    "chromium-headless-shell",
)  # fmt: skip
MACOS_CHROME = Path("/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")
NO_BROWSER = (
    "no Chromium or Chrome found: browser tests skipped (to run them, install one, e.g. "
    "`sudo make chromium` on Debian/Ubuntu, or set PIVOTAL_BROWSER=/path/to/chrome)"
)


def find_browser() -> str | None:
    """``PIVOTAL_BROWSER``, else the first Chromium or Chrome on PATH (or macOS's Chrome)."""
    named = os.environ.get("PIVOTAL_BROWSER")
    if named:
        return shutil.which(named)
    for name in BROWSERS:
        if path := shutil.which(name):
            return path
    return str(MACOS_CHROME) if MACOS_CHROME.is_file() else None


def require_browser() -> str:
    """A headless-capable browser; without one the test is skipped, unless CI requires it.

    Called in the tests' bodies (not as a fixture) so that every browser test skips from this
    one line and pytest's summary shows the notice once: ``SKIPPED [2] ...``.
    """
    path = find_browser()
    if path is None:
        if os.environ.get("PIVOTAL_REQUIRE_BROWSER") == "1":
            pytest.fail(NO_BROWSER.replace("skipped", "required (PIVOTAL_REQUIRE_BROWSER=1)"))
        pytest.skip(NO_BROWSER)
    return path


def browse(browser: str, target: str, screenshot: Path) -> str:
    """The page's DOM after its scripts ran, and a screenshot."""
    flags = [
        browser, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-default-apps", "--virtual-time-budget=10000",
        "--window-size=1200,1600",
    ]  # fmt: skip
    env = {**os.environ, "HOME": str(screenshot.parent)}
    shot = subprocess.run(
        [*flags, f"--screenshot={screenshot}", target], capture_output=True, timeout=120, env=env
    )
    assert shot.returncode == 0 and screenshot.stat().st_size > 10_000, shot.stderr[-2000:]
    dom = subprocess.run(
        [*flags, "--dump-dom", target], capture_output=True, text=True, timeout=120, env=env
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    return dom.stdout


def js_errors(dom: str) -> list[str]:
    start = dom.index('<pre id="pivotal-errors">') + len('<pre id="pivotal-errors">')
    errors: list[str] = json.loads(dom[start : dom.index("</pre>", start)] or "null")
    return errors


@pytest.mark.slow
def test_report_renders_in_chromium(reports: dict[str, Any], tmp_path: Path) -> None:
    browser = require_browser()
    _, folder = reports["negotiation"]
    dom = browse(browser, (folder / "index.html").as_uri(), tmp_path / "report.png")
    assert js_errors(dom) == []
    for key in plotted(folder):
        block = dom[dom.index(f'id="plot-{key}"') :]
        assert 'class="main-svg"' in block[:20000], f"plot {key} not drawn"
    assert png_size(tmp_path / "report.png") == (1200, 1600)


@pytest.mark.slow
def test_live_status_page_renders_in_chromium(tmp_path: Path) -> None:
    browser = require_browser()
    d = deploy(tmp_path / "service", truck_example())
    try:
        d.start_coordinator()
        agents = [d.start_agent(p) for p in d.parties]
        for a in agents:
            assert a.wait(timeout=120) == 0
        dom = browse(browser, f"{d.url}/", tmp_path / "live.png")
    finally:
        d.stop()
    assert js_errors(dom) == []
    assert 'id="state">done<' in dom
    assert 'class="main-svg"' in dom and "joint primal" in dom


# ---------------------------------------------------------------------------------- verify
def test_verify_accepts_the_results_and_catches_an_edited_payment(
    reports: dict[str, Any], tmp_path: Path
) -> None:
    for kind in ("auction", "market", "negotiation"):
        doc, _ = reports[kind]
        path = tmp_path / f"{kind}.json"
        path.write_text(json.dumps(doc))
        ok = run("verify", str(path))
        assert ok.returncode == 0 and "verified" in ok.stdout, ok.stdout + ok.stderr
    doc, _ = reports["auction"]
    edited = json.loads(json.dumps(doc))
    edited["payments"]["2"] = 8.0
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    bad = run("verify", str(tmp_path / "edited.json"))
    assert bad.returncode == 1 and "payments[2]: recorded 8, recomputed 9" in bad.stdout
    doc, _ = reports["market"]
    edited = json.loads(json.dumps(doc))
    edited["transfers"]["maker"] += 0.5
    (tmp_path / "edited-market.json").write_text(json.dumps(edited))
    assert run("verify", str(tmp_path / "edited-market.json")).returncode == 1
    # an input file that is not the one the result was computed from
    (tmp_path / "other.json").write_text(
        json.dumps({"items": ["A"], "bids": [{"bidder": "x", "bundle": ["A"], "value": 1}]})
    )
    wrong = run("verify", str(tmp_path / "auction.json"), "--input", str(tmp_path / "other.json"))
    assert wrong.returncode == 2 and "does not match the result" in wrong.stderr


def test_report_of_a_file_that_is_not_a_result(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"hello": 1}')
    proc = run("report", str(tmp_path / "x.json"), "-o", str(tmp_path / "out"))
    assert proc.returncode == 2 and "not a pivotal result" in proc.stderr
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------- docs
@pytest.mark.parametrize(
    "script", sorted((REPO / "docs").glob("tutorial_*.py")), ids=lambda p: p.stem
)
def test_tutorials_run(script: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert list((tmp_path / "out").rglob("index.html"))


def test_three_tutorials() -> None:
    names = {p.stem for p in (REPO / "docs").glob("tutorial_*.py")}
    assert names == {"tutorial_auction", "tutorial_market", "tutorial_negotiation"}


# ---------------------------------------------------------------------------------- issue 15
def test_interactive_lines_have_a_visible_width(reports: dict[str, Any]) -> None:
    from pivotal.report import build_report
    from pivotal.report.render import plotly_figure

    for kind in ("auction", "market", "negotiation"):
        doc, _ = reports[kind]
        for fig in build_report(doc).figures:
            layout = plotly_figure(fig).to_plotly_json()["layout"]
            template = layout.get("template", {}).get("layout", {})
            default = template.get("shapedefaults", {}).get("line", {}).get("width", 2)
            for shape in layout.get("shapes", []):
                assert shape.get("line", {}).get("width", default) > 0, (kind, fig.key, shape)


def test_report_names_input_date_and_parameters(reports: dict[str, Any]) -> None:
    _, folder = reports["auction"]
    text = (folder / "index.html").read_text()
    assert "<td>input</td><td>examples/seed_vcg_3x4.json</td>" in text
    assert re.search(r"<td>computed</td><td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", text)
    assert re.search(r"<td>report written</td><td>\d{4}-\d\d-\d\d \d\d:\d\d UTC</td>", text)
    assert "<td>tolerances</td><td>abs 1e-06, rel 1e-09</td>" in text
    _, folder = reports["negotiation"]
    text = (folder / "index.html").read_text()
    assert "<td>input</td><td>built-in scenario truck-example</td>" in text
    assert "<td>parameter max_rounds</td><td>500</td>" in text
    assert "amounts rounded to the result&#x27;s tolerance" in text


def _two_vendor_doc() -> tuple[dict[str, Any], dict[str, Any]]:
    """Two vendors that both move their flow from site S1 to site S2."""
    plan = {v: {"k": {"S2": [5.0]}} for v in ("v1", "v2")}
    status_quo = {v: {"k": {"S1": [5.0]}} for v in ("v1", "v2")}
    doc = {"plan": plan, "status_quo_plan": status_quo}
    points = {
        "vendor:v1": (0.0, 0.0, "vendor"),
        "vendor:v2": (0.05, 0.0, "vendor"),  # next to v1: their labels must not overlap
        "site:S1": (3.0, 1.0, "site"),
        "site:S2": (3.0, -1.0, "site"),
        "region:S2 region": (3.0, -1.02, "region"),
    }
    return doc, {"points": points}


def test_map_title_names_each_site_once_and_labels_do_not_overlap() -> None:
    from pivotal.report.figures import PLOT_AREA_PX, _label_box, _overlap
    from pivotal.report.negotiation import _flow_map

    doc, geo = _two_vendor_doc()
    fig = _flow_map(doc, geo)
    assert fig.title == "The joint plan ships to S2 instead of the status-quo sites"
    markers = [s for s in fig.series if s.kind == "marker"]
    xs = [x for s in markers for x in s.x]
    ys = [y for s in markers for y in s.y]
    # the same equal-aspect pixel frame as the placement (an independent restatement of it)
    span_x, span_y = max(xs) - min(xs), max(ys) - min(ys)
    scale = min(PLOT_AREA_PX[0] / (1.2 * span_x), PLOT_AREA_PX[1] / (1.2 * span_y))
    cx, cy = (max(xs) + min(xs)) / 2, (max(ys) + min(ys)) / 2
    boxes = []
    for s in markers:
        for i, (x, y, text) in enumerate(zip(s.x, s.y, s.text, strict=True)):
            px = (PLOT_AREA_PX[0] / 2 + (x - cx) * scale, PLOT_AREA_PX[1] / 2 + (y - cy) * scale)
            box = _label_box(*px, text, s.position(i))
            assert box[0] >= 0 and box[2] <= PLOT_AREA_PX[0], (text, box)
            assert box[1] >= 0 and box[3] <= PLOT_AREA_PX[1], (text, box)
            boxes.append((text, box))
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            assert _overlap(box_a, box_b) == 0, (a, b)
    legend = {s.label() for s in fig.series if s.legend and s.kind == "line"}
    assert legend == {
        "status quo (line width: units shipped)",
        "joint plan (line width: units shipped)",
    }
