// The dashboard's ETA (coordinator/dashboard/dashboard.js, eta and windowOpening) in node,
// with the clock passed in: a wave waiting for a maintenance window names the opening and
// the ETA waits for it. Reads the page's functions only (the source up to its "---- start"
// line), in a sandbox with no DOM.
//
//   node tests/tools/dashboard_eta_check.mjs coordinator/dashboard/dashboard.js
import { readFileSync } from "node:fs";
import vm from "node:vm";
import assert from "node:assert/strict";

const src = readFileSync(process.argv[2], "utf8");
const cut = src.indexOf("// ---- start");
assert.ok(cut > 0, "dashboard.js has no '// ---- start' line");
const ctx = vm.createContext({ location: { hash: "" }, URLSearchParams });
vm.runInContext(src.slice(0, cut), ctx);
const { eta, windowOpening } = ctx;

const H = 3600 * 1000, M = 60 * 1000;
const NOW = Date.UTC(2026, 10, 30, 22, 13, 20);  // 22:13:20 UTC

function wave(o) {
  return Object.assign({ index: 0, name: "w", state: "running", gate: "auto", tenants_total: 0,
                         tenants_applied: 0, tenants_failed: 0, tenants_rolled_back: 0,
                         tenants_skipped: 0, tenants_unreachable: 0, tenants_pending: 0,
                         tenants_running: 0, started_at_ms: 0, finished_at_ms: 0,
                         bake_until_ms: 0, state_reason: "" }, o);
}

// the opening: later today, or tomorrow once today's time has passed
assert.equal(windowOpening(wave({}), NOW), null);
assert.equal(windowOpening(wave({ state_reason: "failure budget exceeded" }), NOW), null);
let o = windowOpening(wave({ state_reason: "waiting for window: 3 tenants may start only in " +
                                           "a maintenance window, next opens 23:00 UTC (in 47m)" }),
                      NOW);
assert.equal(o.hhmm, "23:00");
assert.equal(o.wait, 46 * M + 40 * 1000);
o = windowOpening(wave({ state_reason: "2 tenants waiting for window, next opens 01:00 UTC " +
                                       "(in 2h47m)" }), NOW);
assert.equal(o.hhmm, "01:00");
assert.equal(o.wait, 2 * H + 46 * M + 40 * 1000);

// a canary of 4 done at 1 min per tenant; 10 tenants left in wave 2, which waits for 01:00
const canary = wave({ tenants_total: 4, tenants_applied: 4, started_at_ms: NOW - 10 * H,
                      finished_at_ms: NOW - 10 * H + 4 * M, state: "completed" });
const held = wave({ index: 1, tenants_total: 10, tenants_pending: 10, started_at_ms: NOW - H,
                    state_reason: "waiting for window: 10 tenants may start only in a " +
                                  "maintenance window, next opens 01:00 UTC (in 2h47m)" });
const r = { id: "r-1", state: "running", current_wave: 1, waves: [canary, held] };
let e = eta(r, NOW);
// 10 min of work after a wait of 2h46m40s: 2h56m40s, shown as 2h56m
assert.equal(e.text, "ETA ~2h56m for 10 tenants (the canary took 1m00s per tenant); " +
                     "waiting for window, opens 01:00 UTC");
// once the window is open (the reason gone), no wait
held.state_reason = "";
e = eta(r, NOW);
assert.equal(e.text, "ETA ~10m00s for 10 tenants (the canary took 1m00s per tenant)");
// the canary itself waiting: no pace yet, but the opening is named
const r2 = { id: "r-2", state: "running", current_wave: 0, waves: [wave({ tenants_total: 2,
  tenants_pending: 2, started_at_ms: NOW - M,
  state_reason: "waiting for window: 2 tenants may start only in a maintenance window, " +
                "next opens 23:00 UTC (in 47m)" })] };
assert.equal(eta(r2, NOW).text,
             "ETA: after the canary's first tenants; waiting for window, opens 23:00 UTC");
console.log("dashboard eta: ok");
