// The dashboard's script: a same-origin file, as the Content-Security-Policy (api/mod.rs) allows no inline script.
"use strict";
const $ = (id) => document.getElementById(id);
const tokenInput = $("token"), periodInput = $("period");
tokenInput.value = localStorage.getItem("probity-read-token") || "";
tokenInput.addEventListener("change", () => { localStorage.setItem("probity-read-token", tokenInput.value); refresh(); });
periodInput.addEventListener("change", refresh);

function cell(text, cls) { const td = document.createElement("td"); td.textContent = text; if (cls) td.className = cls; return td; }
function fmt(v, digits) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(digits); }

async function get(path) {
  const headers = tokenInput.value ? { Authorization: "Bearer " + tokenInput.value } : {};
  const res = await fetch(path, { headers });
  const body = await res.json().catch(() => ({ error: res.statusText }));
  if (!res.ok) throw new Error(path + ": " + (body.error || res.status));
  return body;
}

async function refresh() {
  $("error").textContent = "";
  try {
    const services = await get("/api/v1/services");
    const tbody = $("services").tBodies[0];
    tbody.replaceChildren();
    for (const s of services.services || services) {
      const tr = document.createElement("tr");
      tr.append(cell(s.name + " (" + s.id + ")"), cell(s.owner));
      const st = cell(""); const badge = document.createElement("span");
      badge.className = "state " + s.state; badge.textContent = s.state; st.append(badge); tr.append(st);
      tr.append(cell(s.since ? new Date(s.since).toLocaleString() : ""));
      tr.append(cell((s.probes || []).map((p) => p.id || p).join(", ")));
      tr.append(cell((s.agreements || []).map((a) => a.id || a).join(", ")));
      tbody.append(tr);
    }
    const period = periodInput.value.trim();
    const comp = await get("/api/v1/compliance" + (period ? "?period=" + encodeURIComponent(period) : ""));
    const cbody = $("compliance").tBodies[0];
    cbody.replaceChildren();
    for (const a of comp.agreements) {
      const tr = document.createElement("tr");
      // The verdict is the collector's (met / breached / insufficient_data): a period with
      // too little monitoring is never shown as met, whatever its availability figure.
      const verdict = a.verdict || "insufficient_data";
      const revision = a.revision ? " (revision " + a.revision.number + ")" : "";
      tr.append(cell(a.agreement), cell(a.kind.toUpperCase()), cell(a.service), cell(a.period.label),
        cell((a.period.state || "") + revision),
        cell(fmt(a.availability_percent, 3) + (a.availability_percent === null ? "" : "%"), "num"),
        cell(fmt(a.coverage_percent, 1) + (a.coverage_percent === null ? "" : "%"), "num"),
        cell(fmt(a.unknown_seconds, 1), "num"),
        cell(a.target_percent + "%", "num"), cell(fmt(a.downtime_seconds, 1), "num"),
        cell(fmt(a.error_budget_remaining_seconds, 1), "num"),
        cell(verdict.replace("_", " "), verdict));
      cbody.append(tr);
    }
    $("rate").textContent = comp.compliance_rate_percent === null ? "" :
      "(" + comp.met + " met, " + comp.breached + " breached, " + comp.insufficient_data + " insufficient data: " + fmt(comp.compliance_rate_percent, 1) + "%)";
    const gaps = await get("/api/v1/gaps");
    const list = $("gaps"); list.replaceChildren();
    for (const g of gaps.gaps || gaps) { const li = document.createElement("li"); li.textContent = g.message; list.append(li); }
    if (!list.children.length) { const li = document.createElement("li"); li.textContent = "none"; li.className = "muted"; list.append(li); }
  } catch (e) {
    $("error").textContent = e.message;
  }
}
refresh();
setInterval(refresh, 30000);
