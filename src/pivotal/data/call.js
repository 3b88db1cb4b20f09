"use strict";
const $ = (id) => document.getElementById(id);
const page = document.body.dataset.page;
let call = null;

function el(tag, text) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); return e; }
function fill(dl, pairs) { dl.replaceChildren(); for (const [k, v] of pairs) { dl.append(el("dt", k), el("dd", v)); } }
function table(t, head, rows) {
  t.replaceChildren(); const tr = el("tr"); for (const h of head) tr.append(el("th", h)); t.append(tr);
  for (const r of rows) { const row = el("tr"); for (const c of r) { if (c instanceof Node) { const td = el("td"); td.append(c); row.append(td); } else row.append(el("td", c)); } t.append(row); }
}
async function api(method, path, token, body) {
  const headers = {}; if (token) headers["Authorization"] = "Bearer " + token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  let data = null; try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok) { const d = data && data.detail; const msg = Array.isArray(d) ? d.map((x) => x.msg).join("; ") : (d || r.statusText); throw new Error(r.status + ": " + msg); }
  return data;
}
function fmt(x) { return typeof x === "number" ? Number(x.toPrecision(8)).toString() : String(x); }

async function refreshStatus() {
  call = await api("GET", "/v1/call");
  const t = call.terms;
  const what = t.kind === "market" ? (t.good + " (" + t.unit + ")") : ("items " + t.items.join(", "));
  fill($("status-list"), [["call", call.call], ["kind", t.kind], ["what", what], ["phase", call.phase],
    ["deadline (UTC)", call.deadline], ["time left", Math.round(call.seconds_left) + " s"],
    ["participants", call.participants], ["payment rule", t.payment_rule], ["public key", call.public_key]]);
  return call;
}

// ---------------------------------------------------------------- public
async function publicPage() {
  await refreshStatus();
  if (call.phase === "published") {
    const rec = await api("GET", "/v1/record");
    $("published").hidden = false;
    outcomeTable($("outcome-table"), rec.terms.kind, rec.outcome);
    table($("hash-table"), ["participant", "seq", "SHA-256"], rec.reports.map((r) => [r.participant, r.seq, r.sha256]));
  }
}
function outcomeTable(t, kind, o) {
  if (o.void) { table(t, ["outcome"], [[o.void]]); return; }
  if (kind === "market") {
    table(t, ["participant", "quantity", "transfer"], Object.keys(o.quantities).map((n) => [n, fmt(o.quantities[n]), fmt(o.transfers[n])]));
  } else {
    table(t, ["bidder", "wins", "payment"], Object.keys(o.payments).map((n) => [n, (o.allocation[n] || []).join("+") || "-", fmt(o.payments[n])]));
  }
}

// ---------------------------------------------------------------- participant
let me = null;
function creds() { return {name: sessionStorage.getItem("call-name"), token: sessionStorage.getItem("call-token")}; }
function say(text, bad) { const m = $("message"); m.textContent = text; m.className = bad ? "err" : ""; }

function pointRow(q, v) {
  const tr = el("tr");
  for (const [cls, val] of [["q", q], ["v", v]]) { const td = el("td"); const i = el("input"); i.type = "number"; i.step = "any"; i.className = cls; i.value = val; i.addEventListener("input", drawPreview); td.append(i); tr.append(td); }
  const td = el("td"); const b = el("button", "remove"); b.type = "button"; b.addEventListener("click", () => { tr.remove(); drawPreview(); }); td.append(b); tr.append(td);
  $("points").tBodies[0].append(tr);
}
function points() {
  return [...$("points").tBodies[0].rows].map((r) => [Number(r.querySelector(".q").value), Number(r.querySelector(".v").value)]);
}
function drawPreview() {
  const svg = $("preview"); svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const pts = points().filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
  if (pts.length < 2) return;
  const qs = pts.map((p) => p[0]), vs = pts.map((p) => p[1]);
  const qmax = Math.max(...qs) || 1, vmin = Math.min(0, ...vs), vmax = Math.max(...vs) || 1;
  const X = (q) => 40 + 300 * q / qmax, Y = (v) => 200 - 180 * (v - vmin) / ((vmax - vmin) || 1);
  const axes = document.createElementNS(ns, "path"); axes.setAttribute("d", "M40 10 V200 H345"); axes.setAttribute("stroke", "#888"); axes.setAttribute("fill", "none"); svg.append(axes);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("points", pts.map((p) => X(p[0]).toFixed(1) + "," + Y(p[1]).toFixed(1)).join(" "));
  line.setAttribute("fill", "none"); line.setAttribute("stroke", "#1f77b4"); line.setAttribute("stroke-width", "2"); line.setAttribute("id", "preview-line");
  svg.append(line);
  for (const p of pts) { const c = document.createElementNS(ns, "circle"); c.setAttribute("cx", X(p[0])); c.setAttribute("cy", Y(p[1])); c.setAttribute("r", "3"); svg.append(c); }
  const lab = document.createElementNS(ns, "text"); lab.setAttribute("x", "45"); lab.setAttribute("y", "20"); lab.textContent = "max value " + fmt(vmax) + " at quantity " + fmt(qmax); svg.append(lab);
}
function bidRow(items) {
  const tr = el("tr");
  for (const it of items) { const td = el("td"); const c = el("input"); c.type = "checkbox"; c.className = "item"; c.dataset.item = it; td.append(c); tr.append(td); }
  const td = el("td"); const v = el("input"); v.type = "number"; v.step = "any"; v.className = "value"; td.append(v); tr.append(td);
  const rm = el("td"); const b = el("button", "remove"); b.type = "button"; b.addEventListener("click", () => tr.remove()); rm.append(b); tr.append(rm);
  $("bids").tBodies[0].append(tr);
}
function report() {
  if (call.kind === "market") {
    const key = me.role === "producer" ? "cost" : "benefit";
    const r = {}; r[key] = {kind: "piecewise_linear", points: points()};
    const cap = $("capacity").value; if (cap !== "") r.capacity = Number(cap);
    return r;
  }
  return {bids: [...$("bids").tBodies[0].rows].map((row) => ({
    bundle: [...row.querySelectorAll(".item")].filter((c) => c.checked).map((c) => c.dataset.item),
    value: Number(row.querySelector(".value").value)}))};
}
function showReceipt(r) {
  $("receipt").textContent = r ? ("seq " + r.seq + " · " + r.action + " · " + r.server_time + "\nreport SHA-256 " + (r.report_sha256 || "(withdrawn)") + "\nsignature " + r.signature) : "none yet";
}
async function refreshMe() {
  const c = creds(); if (!c.token) return;
  me = await api("GET", "/v1/participants/" + encodeURIComponent(c.name), c.token);
  $("login").hidden = true; $("me").hidden = false;
  fill($("me-list"), [["name", me.name], ["role", me.role], ["status", me.status], ["report on file", me.has_report ? "yes" : "no"]]);
  showReceipt(me.receipt);
  if (me.phase === "closed" || me.phase === "published") {
    const res = await api("GET", "/v1/participants/" + encodeURIComponent(c.name) + "/result", c.token);
    const pairs = res.void ? [["outcome", res.void]] : (call.kind === "market" ? [["quantity", fmt(res.quantity)], ["transfer", fmt(res.transfer)], ["price", fmt(res.price)]] : [["items", res.items.join("+") || "none"], ["payment", fmt(res.payment)]]);
    fill($("result"), pairs);
  }
}
async function participantPage() {
  await refreshStatus();
  const roles = call.kind === "market" ? call.terms.roles : ["bidder"];
  for (const r of roles) { const o = el("option", r); o.value = r; $("reg-role").append(o); }
  if (call.kind === "market") {
    $("market-form").hidden = false; pointRow(0, 0); pointRow("", ""); drawPreview();
    $("add-point").addEventListener("click", () => { pointRow("", ""); drawPreview(); });
  } else {
    $("auction-form").hidden = false;
    for (const it of call.terms.items) $("bids-head").append(el("th", it));
    $("bids-head").append(el("th", "value"), el("th", "")); bidRow(call.terms.items);
    $("add-bid").addEventListener("click", () => bidRow(call.terms.items));
  }
  $("register-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const r = await api("POST", "/v1/register", null, {name: $("reg-name").value, role: $("reg-role").value});
      sessionStorage.setItem("call-name", r.name); sessionStorage.setItem("call-token", r.token);
      $("token-once").hidden = false; $("token-value").textContent = r.token;
      await refreshMe();
    } catch (e) { alertLogin(e.message); }
  });
  $("signin-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem("call-name", $("login-name").value); sessionStorage.setItem("call-token", $("login-token").value);
    try { await refreshMe(); } catch (e) { alertLogin(e.message); }
  });
  $("submit").addEventListener("click", async () => {
    const c = creds();
    try { const r = await api("PUT", "/v1/participants/" + encodeURIComponent(c.name) + "/report", c.token, report()); showReceipt(r); say("accepted: receipt seq " + r.seq); await refreshMe(); }
    catch (e) { say(e.message, true); }
  });
  $("withdraw").addEventListener("click", async () => {
    const c = creds();
    try { const r = await api("DELETE", "/v1/participants/" + encodeURIComponent(c.name) + "/report", c.token); showReceipt(r); say("withdrawn"); await refreshMe(); }
    catch (e) { say(e.message, true); }
  });
  try { await refreshMe(); } catch (e) { /* not signed in yet */ }
  setInterval(async () => { try { await refreshStatus(); await refreshMe(); } catch (e) { /* keep polling */ } }, 3000);
}
function alertLogin(text) { let p = $("login-error"); if (!p) { p = el("p"); p.id = "login-error"; p.className = "err"; $("login").append(p); } p.textContent = text; }

// ---------------------------------------------------------------- operator
async function refreshDashboard() {
  const token = sessionStorage.getItem("op-token"); if (!token) return;
  const v = await api("GET", "/v1/operator", token);
  $("op-login").hidden = true; $("dashboard").hidden = false;
  $("submission-count").textContent = v.submissions; $("registration-count").textContent = v.registrations.length;
  table($("registrations"), ["name", "role", "status", "report on file", ""], v.registrations.map((p) => {
    let action = "";
    if (p.status === "pending") {
      action = el("span");
      for (const verb of ["approve", "reject"]) {
        const b = el("button", verb); b.type = "button";
        b.addEventListener("click", () => opAction("POST", "/v1/operator/participants/" + encodeURIComponent(p.name) + "/" + verb));
        action.append(b, " ");
      }
    }
    return [p.name, p.role, p.status, p.has_report ? "yes" : "no", action];
  }));
  const events = await api("GET", "/v1/operator/events", token);
  table($("events"), ["seq", "time", "event", "participant", "detail"], events.map((e) => {
    const rest = Object.assign({}, e); for (const k of ["seq", "at", "kind", "participant"]) delete rest[k];
    return [e.seq, e.at, e.kind, e.participant || "", JSON.stringify(rest)];
  }));
  if (v.phase === "closed" || v.phase === "published") {
    const o = await api("GET", "/v1/operator/outcome", token); outcomeTable($("op-outcome"), call.kind, o);
  }
}
async function opAction(method, path) {
  try { await api(method, path, sessionStorage.getItem("op-token")); $("op-message").textContent = "done"; $("op-message").className = ""; await refreshStatus(); await refreshDashboard(); }
  catch (e) { $("op-message").textContent = e.message; $("op-message").className = "err"; }
}
async function operatorPage() {
  await refreshStatus();
  $("op-form").addEventListener("submit", async (ev) => {
    ev.preventDefault(); sessionStorage.setItem("op-token", $("op-token").value);
    try { await refreshDashboard(); } catch (e) { $("op-message").textContent = e.message; }
  });
  $("close").addEventListener("click", () => opAction("POST", "/v1/operator/close"));
  $("publish").addEventListener("click", () => opAction("POST", "/v1/operator/publish"));
  try { await refreshDashboard(); } catch (e) { /* not signed in yet */ }
  setInterval(async () => { try { await refreshStatus(); await refreshDashboard(); } catch (e) { /* keep polling */ } }, 3000);
}

({public: publicPage, participant: participantPage, operator: operatorPage})[page]();
