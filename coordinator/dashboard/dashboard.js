// flotilla's dashboard: polls the coordinator's read-only API (/api/v1, the same documents
// as the CLI's --json) every POLL_MS and redraws. No framework, no build step; the DOM is
// built with createElement and textContent only (no HTML from data).
//
// On a non-loopback address the API needs a token: open the page as /#token=TOKEN
// (`flotilla http-token`); the fragment never leaves the browser, and the page sends it as
// a bearer token.
"use strict";

const POLL_MS = 2000;
const TENANT_PAGE = 1000;
const TENANTS_MAX = 50000;  // the grid reads at most this many
const FAILURES_MAX = 20;    // failed tenants whose last report is read
const WAVE_STATES = ["applied", "running", "failed", "rolled-back", "skipped", "unreachable",
                     "pending"];
const TENANT_STATES = ["idle", "queued", "running", "baking", "failed", "rolled-back",
                       "unreachable"];

const token = new URLSearchParams(location.hash.replace(/^#/, "")).get("token");
const failureCache = new Map();  // tenant id -> {updated, rows}
let groupBy = "";

async function api(path) {
  const headers = token ? { Authorization: "Bearer " + token } : {};
  const res = await fetch(path, { headers, cache: "no-store" });
  if (!res.ok) {
    let why = res.status + " " + res.statusText;
    try { why = (await res.json()).error.message || why; } catch (e) { /* not JSON */ }
    throw new Error(path + ": " + why);
  }
  return res.json();
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function replace(id, ...nodes) {
  const box = document.getElementById(id);
  box.replaceChildren(...nodes.filter((n) => n != null));
}

function duration(ms) {
  if (!isFinite(ms) || ms < 0) return "?";
  const s = Math.round(ms / 1000);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h" + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
}

function ago(ms) {
  return ms > 0 ? duration(Date.now() - ms) + " ago" : "never";
}

function waveCount(w, state) {
  switch (state) {
    case "applied": return w.tenants_applied;
    case "running": return w.tenants_running;
    case "failed": return w.tenants_failed;
    case "rolled-back": return w.tenants_rolled_back;
    case "skipped": return w.tenants_skipped;
    case "unreachable": return w.tenants_unreachable;
    case "pending": return w.tenants_pending;
  }
  return 0;
}

function finishedIn(w) {
  return w.tenants_applied + w.tenants_failed + w.tenants_rolled_back + w.tenants_skipped +
         w.tenants_unreachable;
}

// The ETA from the canary's pace: tenants finished per second in the first wave (once it is
// done, or so far), applied to the tenants not yet finished. Gates waiting for a human and
// bakes are not guessed: they are named instead.
function eta(r) {
  if (!["running", "pending", "paused"].includes(r.state) || r.waves.length === 0)
    return null;
  const c = r.waves[0];
  const done = finishedIn(c);
  const end = c.finished_at_ms > 0 ? c.finished_at_ms : Date.now();
  if (c.started_at_ms <= 0 || done === 0) return { text: "ETA: after the canary's first tenants" };
  const per = (end - c.started_at_ms) / done;  // ms per tenant, canary parallelism included
  let left = 0;
  for (const w of r.waves) left += w.tenants_total - finishedIn(w);
  const gates = r.waves.filter((w, i) => i >= r.current_wave && w.gate === "manual" &&
                                         w.state !== "completed").length;
  let text = left === 0 ? "ETA: finishing" :
      "ETA ~" + duration(left * per) + " for " + left + " tenants (the canary took " +
      duration(per) + " per tenant)";
  const cur = r.waves[r.current_wave];
  if (cur && cur.state === "awaiting-promote") text += "; waiting for promote";
  else if (gates > 0) text += "; plus " + gates + " manual gate" + (gates > 1 ? "s" : "");
  if (cur && cur.state === "baking" && cur.bake_until_ms > Date.now())
    text += "; baking " + duration(cur.bake_until_ms - Date.now()) + " more";
  if (r.state === "paused") text += "; paused";
  return { text };
}

function waveRow(r, w) {
  const bar = el("div", { class: "bar", role: "img",
                          "aria-label": w.name + ": " + finishedIn(w) + " of " +
                                        w.tenants_total + " finished" });
  const counts = el("div", { class: "counts" });
  for (const s of WAVE_STATES) {
    const n = waveCount(w, s);
    if (n > 0 && w.tenants_total > 0) {
      const part = el("span", { class: s, title: s + ": " + n });
      part.style.width = (100 * n / w.tenants_total) + "%";
      bar.append(part);
    }
    counts.append(el("b", { "data-rollout": r.id, "data-wave": String(w.index),
                            "data-count": s, text: String(n) }), " " + s + "  ");
  }
  counts.append(" of ", el("b", { "data-rollout": r.id, "data-wave": String(w.index),
                                  "data-count": "total", text: String(w.tenants_total) }));
  if (w.state_reason) counts.append(" — " + w.state_reason);
  const name = el("div", { class: "name", title: w.name },
                  (w.index + 1) + ". " + w.name + " ",
                  el("span", { class: "state " + w.state, "data-rollout": r.id,
                               "data-wave": String(w.index), "data-count": "state",
                               text: w.state }));
  return el("div", { class: "wave" }, name, bar, counts);
}

function rolloutBox(r) {
  const finished = ["completed", "rolled-back"].includes(r.state);
  const box = el("article", { class: "rollout" + (finished ? " finished" : ""),
                              "data-rollout-id": r.id });
  box.append(el("h3", {}, "rollout " + r.id + " ",
                el("span", { class: "state " + r.state, "data-rollout": r.id,
                             "data-count": "rollout-state", text: r.state })));
  const rel = r.release_hash ? r.release_hash.slice(0, 12) : "?";
  box.append(el("p", { class: "meta", text:
    "release " + rel + " to " + r.target_migration_id + " · policy " + r.policy_name +
    " · on failure " + r.on_failure + " · " + r.tenants_total + " tenants · started " +
    ago(r.created_at_ms) + " by " + (r.created_by || "?") +
    (r.state_reason ? " · " + r.state_reason : "") }));
  const e = eta(r);
  if (e) box.append(el("p", { class: "eta", "data-rollout": r.id, "data-count": "eta",
                              text: e.text }));
  for (const w of r.waves) box.append(waveRow(r, w));
  return box;
}

function drawRollouts(doc) {
  const list = doc.rollouts.slice();
  // active first, then the newest finished ones
  list.sort((a, b) => {
    const fa = ["completed", "rolled-back"].includes(a.state), fb = ["completed", "rolled-back"].includes(b.state);
    return fa === fb ? b.created_at_ms - a.created_at_ms : (fa ? 1 : -1);
  });
  if (list.length === 0) replace("rollouts", el("p", { class: "empty", text: "no rollouts yet" }));
  else replace("rollouts", ...list.slice(0, 8).map(rolloutBox));
}

async function failureRows(t) {
  const hit = failureCache.get(t.tenant_id);
  if (hit && hit.updated === t.updated_at_ms) return hit.rows;
  const doc = await api("/api/v1/tenants/" + encodeURIComponent(t.tenant_id) + "?reports=1");
  const rows = [];
  const rep = doc.reports && doc.reports[0];
  if (rep) {
    for (const m of rep.migrations)
      if (m.sqlstate || m.outcome === "failed")
        rows.push({ migration: m.migration_id, sqlstate: m.sqlstate, message: m.message });
    for (const h of rep.health)
      if (!h.ok) rows.push({ migration: "health: " + h.name, sqlstate: "", message: h.message });
    if (rows.length === 0 && rep.message) rows.push({ migration: "", sqlstate: "", message: rep.message });
  }
  for (const f of doc.failed || [])
    if (!rows.some((x) => x.migration === f.id))
      rows.push({ migration: f.id, sqlstate: "", message: (f.logs || "").split("\n")[0] });
  if (rows.length === 0) rows.push({ migration: "", sqlstate: "", message: t.last_error });
  failureCache.set(t.tenant_id, { updated: t.updated_at_ms, rows });
  return rows;
}

async function drawFailures(tenants) {
  const failed = tenants.filter((t) => t.state === "failed").slice(0, FAILURES_MAX);
  if (failed.length === 0) {
    replace("failures", el("p", { class: "empty", text: "no failed tenants" }));
    return;
  }
  const body = el("tbody");
  for (const t of failed) {
    for (const f of await failureRows(t)) {
      body.append(el("tr", { "data-failed-tenant": t.tenant_id },
        el("td", { text: t.tenant_id }), el("td", { text: t.rollout_id || "" }),
        el("td", { text: f.migration }),
        el("td", { class: "sqlstate", "data-sqlstate": f.sqlstate || "", text: f.sqlstate || "" }),
        el("td", { text: f.message || "" })));
    }
  }
  const head = el("thead", {}, el("tr", {}, ...["tenant", "rollout", "migration", "SQLSTATE",
                                                "message"].map((h) => el("th", { text: h }))));
  const total = tenants.filter((t) => t.state === "failed").length;
  replace("failures", el("table", {}, head, body),
          total > failed.length ? el("p", { class: "empty", text: (total - failed.length) +
                                             " more failed tenants (/api/v1/tenants?state=failed)" })
                                : null);
}

function drawFleet(tenants, counts) {
  const select = document.getElementById("group");
  const keys = new Set();
  for (const t of tenants) for (const k of Object.keys(t.labels)) keys.add(k);
  const have = new Set([...select.options].map((o) => o.value));
  for (const k of [...keys].sort())
    if (!have.has(k)) select.append(el("option", { value: k, text: "label " + k }));
  const groups = new Map();
  for (const t of tenants) {
    const g = groupBy ? (t.labels[groupBy] || "(no " + groupBy + ")") : (t.agent_id || "(no agent)");
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(t);
  }
  const boxes = [];
  for (const g of [...groups.keys()].sort()) {
    const list = groups.get(g);
    const by = {};
    for (const t of list) by[t.state] = (by[t.state] || 0) + 1;
    const summary = TENANT_STATES.filter((s) => by[s]).map((s) => by[s] + " " + s).join(", ");
    const cells = el("div", { class: "cells" });
    for (const t of list)
      cells.append(el("span", { class: "cell " + t.state, "data-tenant": t.tenant_id,
                                title: t.tenant_id + ": " + t.state +
                                       (t.head_migration_id ? " at " + t.head_migration_id : "") +
                                       (t.last_error ? " — " + t.last_error : "") }));
    boxes.push(el("div", { class: "group", "data-group": g },
                  el("h3", {}, g + " ", el("small", { text: "(" + list.length + ": " + summary + ")" })),
                  cells));
  }
  if (boxes.length === 0) replace("fleet", el("p", { class: "empty", text: "no tenants yet" }));
  else replace("fleet", ...boxes);
  replace("fleet-counts", document.createTextNode(
    TENANT_STATES.filter((s) => counts[s]).map((s) => counts[s] + " " + s).join(" · ")));
}

async function allTenants() {
  let out = [], after = "", first = null;
  for (;;) {
    const q = "/api/v1/tenants?limit=" + TENANT_PAGE + (after ? "&after=" + encodeURIComponent(after) : "");
    const page = await api(q);
    if (!first) first = page;
    out = out.concat(page.tenants);
    after = page.next_after_tenant_id;
    if (!after || out.length >= TENANTS_MAX) break;
  }
  return { tenants: out, counts: first.counts, total: first.total_count };
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [rollouts, fleet] = await Promise.all([api("/api/v1/rollouts?all=1&limit=20"),
                                                 allTenants()]);
    drawRollouts(rollouts);
    drawFleet(fleet.tenants, fleet.counts);
    await drawFailures(fleet.tenants);
    status.className = "status";
    status.textContent = fleet.total + " tenants · updated " + new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
  } catch (e) {
    status.className = "status error";
    status.textContent = "cannot read the coordinator: " + e.message;
  }
}

function legend() {
  replace("legend", ...TENANT_STATES.map((s) => el("li", {}, el("i", { class: s }), s)));
}

// One refresh at a time: the next starts POLL_MS after the last one ended, so a slow
// coordinator or a large fleet is never asked twice at once.
let timer = null;
async function loop() {
  clearTimeout(timer);
  await refresh();
  timer = setTimeout(loop, POLL_MS);
}
document.getElementById("group").addEventListener("change", (ev) => {
  groupBy = ev.target.value;
  loop();
});
legend();
loop();
