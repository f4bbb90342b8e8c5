// probity's dashboard: one page, vanilla JS, the collector's own API only (its CSP allows
// nothing else: no inline script or style, no other origin). The URL's hash is the view:
// #page=overview|service|agreement|wall, id=…, period=2026-11|2026-Q4|2026-W47|2026 (none:
// each agreement's current period), so every view can be bookmarked and shared.
// Instants come from the API as RFC 3339 in UTC and are shown in the calendar's zone with
// its offset; figures are shown as the API gives them (truncated, never rounded up).
"use strict";

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const PAGES = { overview, service: servicePage, agreement: agreementPage, wall };
let services = null; // the last GET /api/v1/services, for zones and period kinds
let renderSeq = 0;

// ---------- the URL ----------

function route() {
  const p = new URLSearchParams(location.hash.replace(/^#/, ""));
  return { page: p.get("page") || "overview", id: p.get("id") || "", period: p.get("period") || "" };
}

function href(r) {
  const p = new URLSearchParams();
  if (r.page && r.page !== "overview") p.set("page", r.page);
  if (r.id) p.set("id", r.id);
  if (r.period) p.set("period", r.period);
  return "#" + p.toString();
}

function go(changes) {
  const next = Object.assign(route(), changes);
  location.hash = href(next);
}

// ---------- periods (labels as the API reads them) ----------

const pad = (n, w = 2) => String(n).padStart(w, "0");

function kindOf(label) {
  if (/^\d{4}$/.test(label)) return "year";
  if (/^\d{4}-Q[1-4]$/.test(label)) return "quarter";
  if (/^\d{4}-W\d{2}$/.test(label)) return "week";
  if (/^\d{4}-\d{2}$/.test(label)) return "month";
  return "";
}

/** Today's civil date in `tz`. */
function today(tz) {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" });
  const parts = Object.fromEntries(f.formatToParts(new Date()).map((p) => [p.type, p.value]));
  return { y: Number(parts.year), m: Number(parts.month), d: Number(parts.day) };
}

/** The ISO week (year and number) of a civil date given as a UTC Date. */
function isoWeek(date) {
  const thursday = new Date(date.getTime());
  thursday.setUTCDate(thursday.getUTCDate() - ((date.getUTCDay() + 6) % 7) + 3);
  const y = thursday.getUTCFullYear();
  const jan4 = new Date(Date.UTC(y, 0, 4));
  const w = 1 + Math.round(((thursday - jan4) / 86400000 - 3 + ((jan4.getUTCDay() + 6) % 7)) / 7);
  return { y, w };
}

function labelFor(kind, { y, m, d }) {
  switch (kind) {
    case "year": return String(y);
    case "quarter": return `${y}-Q${Math.floor((m - 1) / 3) + 1}`;
    case "week": { const iw = isoWeek(new Date(Date.UTC(y, m - 1, d))); return `${iw.y}-W${pad(iw.w)}`; }
    default: return `${y}-${pad(m)}`;
  }
}

function shift(label, n) {
  const kind = kindOf(label);
  const y = Number(label.slice(0, 4));
  if (kind === "year") return String(y + n);
  if (kind === "quarter") {
    const i = y * 4 + Number(label.slice(6)) - 1 + n;
    return `${Math.floor(i / 4)}-Q${(i % 4) + 1}`;
  }
  if (kind === "month") {
    const i = y * 12 + Number(label.slice(5)) - 1 + n;
    return `${Math.floor(i / 12)}-${pad((i % 12) + 1)}`;
  }
  if (kind === "week") {
    const jan4 = new Date(Date.UTC(y, 0, 4));
    const monday = new Date(jan4.getTime() - ((jan4.getUTCDay() + 6) % 7) * 86400000);
    monday.setUTCDate(monday.getUTCDate() + (Number(label.slice(6)) - 1 + n) * 7);
    const iw = isoWeek(monday);
    return `${iw.y}-W${pad(iw.w)}`;
  }
  return label;
}

// ---------- formatting ----------

const timeFormats = {};

/** An instant in `tz` with its offset, e.g. `2026-11-10 22:00:00 +01:00` (ms when not whole). */
function fmtTime(iso, tz) {
  if (!iso) return "";
  tz = tz || "UTC";
  const f = timeFormats[tz] || (timeFormats[tz] = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    second: "2-digit", hourCycle: "h23", timeZoneName: "longOffset",
  }));
  const date = new Date(iso);
  const p = Object.fromEntries(f.formatToParts(date).map((x) => [x.type, x.value]));
  const offset = (p.timeZoneName || "").replace("GMT", "") || "+00:00";
  const ms = date.getUTCMilliseconds();
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}${ms ? "." + pad(ms, 3) : ""} ${offset}`;
}

/** A figure truncated to `digits` decimals (the API's are truncated to 6: never rounded up). */
function trunc(v, digits) {
  const s = Number(v).toFixed(6);
  return s.slice(0, s.indexOf(".") + (digits > 0 ? digits + 1 : 0));
}

const isNum = (v) => typeof v === "number" && isFinite(v);
const pct = (v) => (isNum(v) ? trunc(v, 3) + "\u00a0%" : "n/a");

/** Seconds as `1d 2h 3m 4s` (whole seconds), negative with a leading `-`. */
function dur(seconds) {
  if (!isNum(seconds)) return "n/a";
  let t = Math.round(Math.abs(seconds));
  const parts = [];
  const d = Math.floor(t / 86400); t -= d * 86400;
  const h = Math.floor(t / 3600); t -= h * 3600;
  const m = Math.floor(t / 60); t -= m * 60;
  if (d) parts.push(d + "d");
  if (h) parts.push(h + "h");
  if (m) parts.push(m + "m");
  if (t || !parts.length) parts.push(t + "s");
  return (seconds < 0 && Math.round(Math.abs(seconds)) > 0 ? "-" : "") + parts.join(" ");
}

const rate = (v) => (isNum(v) ? v.toFixed(2) + "×" : "n/a");
const verdictText = (v) => (v === "insufficient_data" ? "insufficient data" : v || "insufficient data");
const reasonsText = (r) => Object.entries(r || {}).map(([k, n]) => `${k}: ${n}`).join(", ");

/** Remaining budget as a share of the budget (null without a budget). */
function budgetShare(remaining, budget) {
  return isNum(remaining) && isNum(budget) && budget > 0 ? (100 * remaining) / budget : null;
}

// ---------- DOM ----------

function build(doc, tag, attrs, children) {
  const e = doc;
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else e.setAttribute(k === "cls" ? "class" : k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}
const el = (tag, attrs, ...children) => build(document.createElement(tag), tag, attrs, children);
const svg = (tag, attrs, ...children) => build(document.createElementNS(SVG_NS, tag), tag, attrs, children);
const link = (r, text) => el("a", { href: href(r) }, text);
const badge = (cls, text) => el("span", { cls: "badge " + cls }, text);
const td = (label, content, attrs) => el("td", Object.assign({ "data-label": label }, attrs || {}), content);
const tile = (label, value, field) => el("div", { cls: "tile" }, el("div", { cls: "label" }, label),
  el("div", { cls: "value", "data-field": field }, value));

function table(headers, rows) {
  const head = el("tr", {}, headers.map((h) => el("th", { cls: h.num ? "num" : null }, h.label || h)));
  return el("table", {}, el("thead", {}, head), el("tbody", {}, rows));
}

const enc = encodeURIComponent;

function query(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

// ---------- the API ----------

async function get(path) {
  const token = $("token").value;
  const res = await fetch(path, { headers: token ? { Authorization: "Bearer " + token } : {} });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(path + ": " + (body.error || res.status));
  return body;
}

async function loadServices() {
  services = (await get("/api/v1/services")).services;
  return services;
}

function findAgreement(id) {
  for (const s of services || []) {
    for (const a of s.agreements || []) if (a.id === id) return { service: s, agreement: a };
  }
  return null;
}

/** The zone the service's times are shown in: its first agreement's calendar, else UTC. */
const serviceZone = (s) => ((s.agreements || [])[0] || {}).timezone || "UTC";

// ---------- pages ----------

async function overview(r) {
  const [list, comp] = await Promise.all([loadServices(), get("/api/v1/compliance" + query({ period: r.period }))]);
  const serviceRows = list.map((s) => el("tr", { "data-service": s.id },
    td("service", link({ page: "service", id: s.id, period: r.period }, s.name || s.id)),
    td("state", badge(s.state, s.state), { "data-field": "state" }),
    td("since", fmtTime(s.since, serviceZone(s)), { "data-field": "since" }),
    td("owner", s.owner || ""),
    td("agreements", (s.agreements || []).map((a, i) => [i ? ", " : "", link({ page: "agreement", id: a.id, period: r.period }, a.id)])),
  ));
  const lines = comp.agreements || [];
  const agreementRows = lines.map((a) => {
    const verdict = a.verdict || "insufficient_data";
    const zone = (findAgreement(a.agreement) || { agreement: {} }).agreement.timezone || "UTC";
    const burn = a.burn_rate || {};
    return el("tr", { "data-agreement": a.agreement, cls: verdict },
      td("agreement", [link({ page: "agreement", id: a.agreement, period: r.period }, a.agreement), " ", el("span", { cls: "muted" }, (a.kind || "").toUpperCase())]),
      td("verdict", badge(verdict, verdictText(verdict)), { "data-field": "verdict" }),
      td("availability", pct(a.availability_percent), { "data-field": "availability", cls: "num" }),
      td("target", pct(a.target_percent), { "data-field": "target", cls: "num" }),
      td("coverage", pct(a.coverage_percent), { "data-field": "coverage", cls: "num" }),
      td("unknown", dur(a.unknown_seconds), { "data-field": "unknown", cls: "num" }),
      td("budget left", dur(a.error_budget_remaining_seconds), { "data-field": "budget", cls: "num" }),
      td("budget left %", pct(budgetShare(a.error_budget_remaining_seconds, a.error_budget_seconds)), { "data-field": "budget_percent", cls: "num" }),
      td("burn 1h / 6h", `${rate(burn.last_1h)} / ${rate(burn.last_6h)}`, { "data-field": "burn", cls: "num" }),
      td("period", [a.period.label, " ", el("span", { cls: "muted" }, a.period.state || "")], { "data-field": "period", title: `${fmtTime(a.period.from, zone)} – ${fmtTime(a.period.to, zone)}` }),
    );
  });
  const summary = el("p", { id: "compliance-summary" },
    `${comp.met} met, ${comp.breached} breached, ${comp.insufficient_data} insufficient data; compliance rate `,
    el("strong", { "data-field": "compliance_rate" }, pct(comp.compliance_rate_percent)));
  return [
    el("h2", {}, "Services"),
    table(["service", "state", "since", "owner", "agreements"], serviceRows),
    el("h2", {}, "Agreements ", el("span", { cls: "muted" }, r.period || "current periods")),
    summary,
    table(["agreement", "verdict", { label: "availability", num: 1 }, { label: "target", num: 1 }, { label: "coverage", num: 1 },
      { label: "unknown", num: 1 }, { label: "budget left", num: 1 }, { label: "budget left %", num: 1 },
      { label: "burn 1h / 6h", num: 1 }, "period"], agreementRows),
  ];
}

async function servicePage(r) {
  await loadServices();
  const s = services.find((x) => x.id === r.id);
  if (!s) throw new Error(`unknown service "${r.id}"`);
  const base = `/api/v1/services/${enc(s.id)}`;
  const q = { period: r.period };
  const [avail, tl, series] = await Promise.all([
    get(`${base}/availability${query(q)}`),
    get(`${base}/timeline${query(q)}`),
    get(`${base}/latency/series${query(Object.assign({ percentiles: "50,95,99" }, q))}`),
  ]);
  const tz = tl.timezone;
  return [
    el("h2", {}, `${s.name || s.id} `, el("span", { cls: "muted" }, s.id), " ", badge(s.state, s.state)),
    el("p", { cls: "muted" }, `${s.state} since ${fmtTime(s.since, tz)}; owner ${s.owner || "—"}; period ${tl.period.label} `,
      `(${fmtTime(tl.period.from, tz)} – ${fmtTime(tl.period.to, tz)}, calendar ${tl.calendar}, times in ${tz})`),
    el("div", { cls: "tiles" },
      tile("availability (24x7)", pct(avail.availability_percent), "availability"),
      tile("coverage", pct(avail.coverage_percent), "coverage"),
      tile("unknown", dur(avail.unknown_seconds), "unknown"),
      tile("downtime", dur(avail.downtime_seconds), "downtime"),
      tile("outages", String((avail.outages || []).length), "outages")),
    el("h3", {}, "State over the period"), timelineBar(tl),
    el("h3", {}, "Outages"), outagesTable(avail.outages || [], tz),
    el("h3", {}, "Latency"), latencyChart(series, null),
    el("h3", {}, "Probes and agents"), probesTable(s),
    el("h3", {}, "Coverage per agent"), agentsTable(tl),
    el("h3", {}, "Agreements"),
    el("ul", {}, (s.agreements || []).map((a) => el("li", {}, link({ page: "agreement", id: a.id, period: r.period }, a.id),
      ` ${(a.kind || "").toUpperCase()} ${a.target_percent} % on ${a.calendar} (${a.timezone}), per ${a.period}`))),
  ];
}

async function agreementPage(r) {
  await loadServices();
  const found = findAgreement(r.id);
  if (!found) throw new Error(`unknown agreement "${r.id}"`);
  const { service: s, agreement: ref } = found;
  const report = await get(`/api/v1/agreements/${enc(r.id)}/report${query({ period: r.period })}`);
  const tz = ref.timezone || "UTC";
  const range = { from: report.period.from, to: report.period.to, calendar: report.calendar };
  const percentiles = ["50", "95", "99"];
  const own = report.latency ? String(report.latency.percentile) : null;
  if (own && !percentiles.includes(own)) percentiles.push(own);
  const base = `/api/v1/services/${enc(s.id)}`;
  const [tl, series] = await Promise.all([
    get(`${base}/timeline${query(range)}`),
    get(`${base}/latency/series${query(Object.assign({ percentiles: percentiles.join(",") }, range))}`),
  ]);
  const verdict = report.verdict || "insufficient_data";
  const burn = report.burn_rate || {};
  const latency = report.latency;
  const tiles = [
    el("div", { cls: "tile" }, el("div", { cls: "label" }, "verdict"),
      el("div", { cls: "value", "data-field": "verdict" }, badge(verdict, verdictText(verdict)))),
    tile(`availability (target ${pct(report.target_percent)})`, pct(report.availability_percent), "availability"),
    tile(`coverage (min ${pct(report.min_coverage_percent)})`, pct(report.coverage_percent), "coverage"),
    tile("unknown time", dur(report.unknown_seconds), "unknown"),
    tile("downtime", dur(report.downtime_seconds), "downtime"),
    tile(`error budget left (of ${dur(report.error_budget_seconds)})`,
      `${dur(report.error_budget_remaining_seconds)} · ${pct(budgetShare(report.error_budget_remaining_seconds, report.error_budget_seconds))}`, "budget"),
    tile("burn rate 1h / 6h", `${rate(burn.last_1h)} / ${rate(burn.last_6h)}`, "burn"),
  ];
  if (latency) {
    const achieved = isNum(latency.achieved_ms) ? latency.achieved_ms.toFixed(1) + " ms" : "n/a";
    tiles.push(tile(`p${latency.percentile} latency (max ${latency.target_ms} ms, ${latency.samples} samples)`, achieved, "latency"));
  }
  const revision = report.revision ? ` · revision ${report.revision.number}` : "";
  const pending = report.restatement_pending ? " · restatement pending" : "";
  const windows = report.maintenance_windows || tl.maintenance || [];
  return [
    el("h2", {}, `${report.agreement} `, el("span", { cls: "muted" }, `${(report.kind || "").toUpperCase()} for ${report.counterparty || "—"} on `),
      link({ page: "service", id: s.id, period: r.period }, s.name || s.id)),
    el("p", { cls: "muted", "data-field": "period" }, `period ${report.period.label} (${report.period.state || (report.period.complete ? "complete" : "open")}${revision}${pending}): `,
      `${fmtTime(report.period.from, tz)} – ${fmtTime(report.period.to, tz)}; calendar ${report.calendar}, times in ${tz}; unknown time ${report.unknown_policy === "exclude" ? "excluded" : "counted as " + report.unknown_policy}`),
    el("div", { cls: "tiles" }, tiles),
    el("h3", {}, "State over the period"), timelineBar(tl),
    el("h3", {}, "Outages"), outagesTable(report.outages || [], tz),
    el("h3", {}, "Maintenance"), maintenanceTable(windows, tz),
    el("h3", {}, "Latency"), latencyChart(series, latency ? latency.target_ms : null),
    el("h3", {}, "Probes and agents"), probesTable(s),
    el("h3", {}, "Coverage per agent"), agentsTable(tl),
  ];
}

async function wall(r) {
  const [list, comp] = await Promise.all([loadServices(), get("/api/v1/compliance" + query({ period: r.period }))]);
  const serviceTiles = list.map((s) => el("a", { cls: "tile " + s.state, href: href({ page: "service", id: s.id, period: r.period }), "data-service": s.id },
    el("div", { cls: "name" }, s.name || s.id),
    el("div", { cls: "value" }, s.state),
    el("div", { cls: "label" }, "since " + fmtTime(s.since, serviceZone(s)))));
  const agreementTiles = (comp.agreements || []).map((a) => {
    const verdict = a.verdict || "insufficient_data";
    return el("a", { cls: "tile " + verdict, href: href({ page: "agreement", id: a.agreement, period: r.period }), "data-agreement": a.agreement },
      el("div", { cls: "name" }, a.agreement),
      el("div", { cls: "value" }, pct(a.availability_percent)),
      el("div", { cls: "label" }, `${verdictText(verdict)} · target ${pct(a.target_percent)} · coverage ${pct(a.coverage_percent)} · ${a.period.label}`));
  });
  return [el("h2", {}, "Services"), el("div", { cls: "wall" }, serviceTiles),
    el("h2", {}, "Agreements"), el("div", { cls: "wall" }, agreementTiles)];
}

// ---------- parts ----------

const STATE_NAMES = { up: "up", down: "down", unknown: "unknown", maintenance: "maintenance", outside_hours: "outside service hours" };

function runText(run, tz) {
  let text = `${STATE_NAMES[run.state] || run.state}: ${fmtTime(run.start, tz)} – ${fmtTime(run.end, tz)} (${dur(run.seconds)})`;
  if (run.reasons && Object.keys(run.reasons).length) text += `\nreasons: ${reasonsText(run.reasons)}`;
  if (run.outage && (run.outage.start !== run.start || run.outage.end !== run.end)) {
    text += `\noutage: ${fmtTime(run.outage.start, tz)} – ${fmtTime(run.outage.end, tz)}`;
  }
  return text;
}

function timelineBar(tl) {
  const tz = tl.timezone;
  const from = Date.parse(tl.period.from), to = Date.parse(tl.period.to);
  const span = Math.max(1, to - from);
  const bar = svg("svg", { cls: "bar", viewBox: "0 0 1000 40", preserveAspectRatio: "none", role: "img", "aria-label": "state over the period" });
  for (const run of tl.runs) {
    const a = Date.parse(run.start), b = Date.parse(run.end);
    const x = ((a - from) / span) * 1000, w = Math.max(((b - a) / span) * 1000, 0.4);
    const text = runText(run, tz);
    const rect = svg("rect", { x: x.toFixed(3), y: "0", width: w.toFixed(3), height: "40", cls: run.state, "data-state": run.state },
      svg("title", {}, text));
    rect.addEventListener("mousemove", (ev) => showHover(ev, text));
    rect.addEventListener("click", (ev) => showHover(ev, text));
    rect.addEventListener("mouseleave", hideHover);
    bar.append(rect);
  }
  const legend = el("div", { cls: "legend" }, Object.entries(STATE_NAMES).map(([k, v]) => el("span", { cls: k }, v)));
  const mid = new Date(from + span / 2).toISOString();
  const axis = el("div", { cls: "axis" }, el("span", {}, fmtTime(tl.period.from, tz)), el("span", {}, fmtTime(mid, tz)), el("span", {}, fmtTime(tl.period.to, tz)));
  return el("div", { cls: "timeline", "data-runs": String(tl.runs.length) }, legend, bar, axis);
}

function showHover(ev, text) {
  const h = $("hover");
  h.textContent = text;
  h.hidden = false;
  // CSSOM positioning: allowed by the CSP (it refuses style attributes, not this).
  const left = Math.max(4, Math.min(ev.clientX + 12, window.innerWidth - h.offsetWidth - 4));
  const top = ev.clientY + 16 + h.offsetHeight > window.innerHeight ? ev.clientY - h.offsetHeight - 8 : ev.clientY + 16;
  h.style.left = left + "px";
  h.style.top = Math.max(4, top) + "px";
}

function hideHover() {
  $("hover").hidden = true;
}

function outagesTable(outages, tz) {
  if (!outages.length) return el("p", { cls: "muted", "data-field": "no_outages" }, "no outages in agreed service time");
  return table(["start", "end", { label: "duration", num: 1 }, { label: "counted", num: 1 }, "probes", "agents", "reasons"],
    outages.map((o) => el("tr", { cls: "outage" },
      td("start", fmtTime(o.start, tz)),
      td("end", o.ongoing ? [fmtTime(o.end, tz), " ", badge("down", "ongoing")] : fmtTime(o.end, tz)),
      td("duration", dur(o.duration_seconds), { cls: "num" }),
      td("counted", dur(o.counted_seconds), { cls: "num" }),
      td("probes", (o.probes || []).join(", ")),
      td("agents", (o.agents || []).join(", ")),
      td("reasons", reasonsText(o.reasons) + ((o.attributed_to || []).length
        ? "; during " + o.attributed_to.map((x) => `${x.service} (${dur(x.counted_seconds)})`).join(", ") : "")))));
}

function maintenanceTable(windows, tz) {
  if (!windows.length) return el("p", { cls: "muted" }, "no maintenance windows in the period");
  return table(["window", "start", "end", "reason"], windows.map((m) => el("tr", {},
    td("window", m.id), td("start", fmtTime(m.start, tz)), td("end", fmtTime(m.end, tz)), td("reason", m.reason || ""))));
}

function probesTable(s) {
  return table(["probe", "kind", "target", { label: "interval", num: 1 }, { label: "quorum", num: 1 }, "agents"],
    (s.probes || []).map((p) => el("tr", {},
      td("probe", p.id), td("kind", p.kind), td("target", p.target),
      td("interval", dur(p.interval_ms / 1000), { cls: "num" }), td("quorum", String(p.quorum), { cls: "num" }),
      td("agents", (p.agents || []).join(", ")))));
}

function agentsTable(tl) {
  return table(["probe", "agent", { label: "monitored", num: 1 }, { label: "coverage", num: 1 }],
    (tl.agents || []).map((a) => el("tr", { "data-probe": a.probe, "data-agent": a.agent },
      td("probe", a.probe), td("agent", a.agent),
      td("monitored", dur(a.monitored_seconds), { cls: "num" }),
      td("coverage", pct(a.coverage_percent), { cls: "num", "data-field": "agent_coverage" }))));
}

function latencyChart(series, targetMs) {
  const points = series.points || [];
  const keys = ["p50", "p95", "p99"];
  const values = points.flatMap((p) => keys.map((k) => p.percentiles[k]).filter(isNum));
  if (!values.length) return el("p", { cls: "muted", "data-field": "no_latency" }, "no successful results in agreed service time");
  const W = 1000, H = 240, L = 56, R = 8, T = 8, B = 8;
  const max = Math.max(...values, isNum(targetMs) ? targetMs : 0) * 1.1 || 1;
  const from = Date.parse(series.period.from), to = Date.parse(series.period.to);
  const span = Math.max(1, to - from);
  const x = (p) => L + (((Date.parse(p.start) + Date.parse(p.end)) / 2 - from) / span) * (W - L - R);
  const y = (v) => T + (1 - v / max) * (H - T - B);
  const chart = svg("svg", { cls: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "latency percentiles" });
  for (const f of [0, 0.5, 1]) {
    const v = max * f;
    chart.append(svg("line", { cls: "grid", x1: L, x2: W - R, y1: y(v).toFixed(1), y2: y(v).toFixed(1) }));
    chart.append(svg("text", { x: L - 4, y: (y(v) + 4).toFixed(1), "text-anchor": "end" }, `${v.toFixed(v < 10 ? 1 : 0)} ms`));
  }
  if (isNum(targetMs)) {
    chart.append(svg("line", { cls: "target", x1: L, x2: W - R, y1: y(targetMs).toFixed(1), y2: y(targetMs).toFixed(1) },
      svg("title", {}, `target ${targetMs} ms`)));
  }
  const dots = [];
  for (const k of keys) {
    let d = "", pen = "M";
    for (const p of points) {
      const v = p.percentiles[k];
      if (!isNum(v)) { pen = "M"; continue; }
      d += `${pen}${x(p).toFixed(1)},${y(v).toFixed(1)} `;
      pen = "L";
      dots.push(svg("circle", { cls: `dot ${k}`, cx: x(p).toFixed(1), cy: y(v).toFixed(1), r: "3" },
        svg("title", {}, `${k} ${v} ms, ${fmtTime(p.start, series.timezone)} – ${fmtTime(p.end, series.timezone)}, ${p.count} results`)));
    }
    if (d) chart.append(svg("path", { cls: `line ${k}`, d }));
  }
  chart.append(...dots);
  const tz = series.timezone;
  const legend = el("div", { cls: "legend" }, keys.map((k) => el("span", { cls: k }, k)),
    el("span", { cls: "muted" }, `per ${series.step}, ${points.reduce((n, p) => n + p.count, 0)} successful results`));
  const axis = el("div", { cls: "axis" }, el("span", {}, fmtTime(series.period.from, tz)), el("span", {}, ""), el("span", {}, fmtTime(series.period.to, tz)));
  return el("div", { cls: "latency" }, legend, chart, axis);
}

// ---------- the page's frame ----------

function pageZone(r) {
  if (r.page === "agreement") return ((findAgreement(r.id) || {}).agreement || {}).timezone || "UTC";
  if (r.page === "service") { const s = (services || []).find((x) => x.id === r.id); return s ? serviceZone(s) : "UTC"; }
  return "UTC";
}

function pageKind(r) {
  if (r.period) return kindOf(r.period) || "month";
  if (r.page === "agreement") return ((findAgreement(r.id) || {}).agreement || {}).period || "month";
  return $("period-kind").value || "month";
}

function updateFrame(r) {
  $("period-label").textContent = r.period || "current";
  $("period-current").disabled = !r.period;
  $("period-kind").value = pageKind(r);
  $("nav-overview").className = r.page === "overview" ? "current" : "";
  $("nav-wall").className = r.page === "wall" ? "current" : "";
  $("nav-overview").setAttribute("href", href({ page: "overview", period: r.period }));
  $("nav-wall").setAttribute("href", href({ page: "wall", period: r.period }));
  document.body.classList.toggle("wall-mode", r.page === "wall");
}

async function render(quiet) {
  const r = route();
  const seq = ++renderSeq;
  const view = $("view");
  const hash = location.hash;
  updateFrame(r);
  if (!quiet) view.dataset.state = "loading";
  try {
    const page = PAGES[r.page];
    if (!page) throw new Error(`no such page "${r.page}"; use overview, service, agreement or wall`);
    const content = await page(r);
    if (seq !== renderSeq) return;
    updateFrame(r);
    view.replaceChildren(...content);
    view.dataset.route = hash;
    view.dataset.state = "ready";
    $("error").textContent = "";
  } catch (e) {
    if (seq !== renderSeq) return;
    view.dataset.route = hash;
    view.dataset.state = "error";
    $("error").textContent = e.message;
  }
}

function periodStep(n) {
  const r = route();
  const from = r.period || labelFor(pageKind(r), today(pageZone(r)));
  go({ period: shift(from, n) });
}

$("token").value = localStorage.getItem("probity-read-token") || "";
$("token").addEventListener("change", () => { localStorage.setItem("probity-read-token", $("token").value); render(); });
$("period-prev").addEventListener("click", () => periodStep(-1));
$("period-next").addEventListener("click", () => periodStep(1));
$("period-current").addEventListener("click", () => go({ period: "" }));
$("period-kind").addEventListener("change", () => go({ period: labelFor($("period-kind").value, today(pageZone(route()))) }));
document.addEventListener("scroll", hideHover, { passive: true });
window.addEventListener("hashchange", () => render());
setInterval(() => { if (!document.hidden) render(true); }, 30000);
render();
