"""The call's pages: public, participant and operator, with one script and one style sheet
served by the call itself (``/assets/call.js``, ``/assets/call.css``, kept in ``pivotal/data``):
nothing from outside, no inline script (the Content-Security-Policy allows scripts from the
call's own origin only).

The pages hold no data: the script reads the API with the token the user types (kept in the
tab's ``sessionStorage``) and writes every value with ``textContent``. The participant page
draws a market curve's preview as SVG as the table of points changes.
"""

from __future__ import annotations

import html
from importlib import resources

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title><link rel="stylesheet" href="/assets/call.css">
<script src="/assets/call.js" defer></script></head>
<body data-page="{kind}"><header><h1>{title}</h1>
<nav><a href="/">public</a> · <a href="/participant">participant</a> ·
<a href="/operator">operator</a></nav></header>
<main>
<section id="status"><h2>Call</h2><dl id="status-list"></dl></section>
{body}
</main></body></html>
"""

_PUBLIC = """
<section id="published" hidden><h2>Published outcome</h2><table id="outcome-table"></table>
<h3>Report hashes</h3><table id="hash-table"></table></section>
"""

_PARTICIPANT = r"""
<section id="login"><h2>Sign in</h2>
<form id="register-form"><fieldset><legend>Register</legend>
<label>Name <input id="reg-name" autocomplete="off" pattern="[a-z0-9][a-z0-9_\-]{0,63}"></label>
<label>Role <select id="reg-role"></select></label>
<button type="submit" id="register">Register</button></fieldset></form>
<form id="signin-form"><fieldset><legend>I have a token</legend>
<label>Name <input id="login-name" autocomplete="off"></label>
<label>Token <input id="login-token" type="password" autocomplete="off"></label>
<button type="submit" id="signin">Sign in</button></fieldset></form>
</section>
<section id="me" hidden><h2>My report</h2>
<p id="token-once" hidden>Your token (shown once, keep it): <code id="token-value"></code></p>
<dl id="me-list"></dl>
<div id="market-form" hidden>
<p>Cost or benefit curve: points (quantity, total value), starting at (0, 0).</p>
<table id="points"><thead><tr><th>quantity</th><th>value</th><th></th></tr></thead>
<tbody></tbody></table>
<button type="button" id="add-point">Add point</button>
<label>Capacity <input id="capacity" type="number" step="any"></label>
<svg id="preview" width="360" height="220" viewBox="0 0 360 220" role="img"
 aria-label="curve preview"></svg>
</div>
<div id="auction-form" hidden>
<p>Bundle bids (XOR: you win at most one bundle).</p>
<table id="bids"><thead><tr id="bids-head"></tr></thead><tbody></tbody></table>
<button type="button" id="add-bid">Add bid</button>
</div>
<p><button type="button" id="submit">Submit</button>
<button type="button" id="withdraw">Withdraw</button></p>
<p id="message" role="status"></p>
<h3>Receipt</h3><pre id="receipt">none yet</pre>
<h3>Result</h3><dl id="result">after the close</dl>
</section>
"""

_OPERATOR = """
<section id="op-login"><h2>Operator</h2><form id="op-form">
<label>Token <input id="op-token" type="password" autocomplete="off"></label>
<button type="submit" id="op-signin">Sign in</button></form></section>
<section id="dashboard" hidden><h2>Dashboard</h2>
<p>Submissions: <strong id="submission-count">0</strong> ·
Registrations: <strong id="registration-count">0</strong></p>
<p><button type="button" id="close">Close the call</button>
<button type="button" id="publish">Publish</button></p>
<p id="op-message" role="status"></p>
<h3>Registrations</h3><table id="registrations"></table>
<h3>Outcome</h3><table id="op-outcome"></table>
<h3>Event log</h3><table id="events"></table></section>
"""

_BODIES = {"public": _PUBLIC, "participant": _PARTICIPANT, "operator": _OPERATOR}


def page(kind: str, call_name: str) -> str:
    """One of the three pages."""
    title = f"{html.escape(call_name)}: {kind} page"
    return _LAYOUT.format(title=title, kind=kind, body=_BODIES[kind])


def _asset(name: str) -> str:
    return resources.files("pivotal.data").joinpath(name).read_text(encoding="utf-8")


ASSETS: dict[str, tuple[str, str]] = {
    "call.js": ("text/javascript", _asset("call.js")),
    "call.css": ("text/css", _asset("call.css")),
}
"""Static assets (``pivotal/data/call.js`` and ``call.css``): name -> (media type, text)."""

__all__ = ["ASSETS", "page"]
