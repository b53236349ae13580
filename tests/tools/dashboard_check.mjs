// dashboard_check.mjs: load the coordinator's dashboard in headless Chromium and check it,
// over the DevTools protocol on a pipe (--remote-debugging-pipe: no websocket, no npm
// package). Used by tests/integration/fleet/test_fleet_http.sh.
//
//   node dashboard_check.mjs --base http://127.0.0.1:PORT --rollout ID [--token T]
//        [--sqlstate CODE] --screenshot FILE.png --dom FILE.html [--chromium BIN]
//
// Passes (exit 0) when, within 60 s: the page loads and draws; the rollout's numbers on the
// page (every wave's count by state, total and state) equal /api/v1/rollouts/ID's; with
// --sqlstate, a failure with that SQLSTATE is listed; and nothing was logged as an error
// (console errors, uncaught exceptions, failed loads, CSP violations). The screenshot and
// the DOM are written either way. Exit 1 with the reasons otherwise.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
for (const k of ["base", "rollout", "screenshot", "dom"])
  if (!args[k]) { console.log("dashboard_check: --" + k + " is required"); process.exit(2); }

const WAVE_STATES = ["applied", "running", "failed", "rolled-back", "skipped", "unreachable", "pending"];
const profile = mkdtempSync(join(tmpdir(), "fl-chromium-"));
const chrome = spawn(args.chromium || "chromium", [
  "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
  "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
  "--remote-debugging-pipe", "--user-data-dir=" + profile, "--window-size=1280,1000", "about:blank",
], { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] });
let chromeErr = "";
chrome.stderr.on("data", (d) => { chromeErr = (chromeErr + d).slice(-4000); });

let nextId = 1, buf = "";
const pending = new Map(), errors = [];
chrome.stdio[4].on("data", (d) => {
  buf += d.toString("utf8");
  let i;
  while ((i = buf.indexOf("\0")) >= 0) {
    const msg = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    if (msg.id && pending.has(msg.id)) {
      const { resolve, reject } = pending.get(msg.id);
      pending.delete(msg.id);
      if (msg.error) reject(new Error(JSON.stringify(msg.error))); else resolve(msg.result);
    } else {
      event(msg);
    }
  }
});
function send(method, params = {}, sessionId) {
  const id = nextId++;
  chrome.stdio[3].write(JSON.stringify({ id, method, params, sessionId }) + "\0");
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}
function event(m) {
  if (m.method === "Runtime.consoleAPICalled" && (m.params.type === "error" || m.params.type === "assert"))
    errors.push("console." + m.params.type + ": " + m.params.args.map((a) => a.value ?? a.description).join(" "));
  else if (m.method === "Runtime.exceptionThrown")
    errors.push("exception: " + (m.params.exceptionDetails.exception?.description || m.params.exceptionDetails.text));
  else if (m.method === "Log.entryAdded" && m.params.entry.level === "error")
    errors.push("log: " + m.params.entry.text + (m.params.entry.url ? " (" + m.params.entry.url + ")" : ""));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let session;
async function evaluate(expression) {
  const r = await send("Runtime.evaluate", { expression, returnByValue: true }, session);
  if (r.exceptionDetails) throw new Error("evaluate: " + r.exceptionDetails.text);
  return r.result.value;
}
async function apiRollout() {
  const res = await fetch(args.base + "/api/v1/rollouts/" + encodeURIComponent(args.rollout),
                          { headers: args.token ? { Authorization: "Bearer " + args.token } : {} });
  if (!res.ok) throw new Error("api: " + res.status);
  return res.json();
}
function expected(r) {
  const want = {};
  for (const w of r.waves) {
    const c = { applied: w.tenants_applied, running: w.tenants_running, failed: w.tenants_failed,
                "rolled-back": w.tenants_rolled_back, skipped: w.tenants_skipped,
                unreachable: w.tenants_unreachable, pending: w.tenants_pending };
    for (const s of WAVE_STATES) want[w.index + "/" + s] = String(c[s]);
    want[w.index + "/total"] = String(w.tenants_total);
    want[w.index + "/state"] = w.state;
  }
  want["rollout-state"] = r.state;
  return want;
}
const SHOWN = `JSON.stringify(Object.fromEntries([...document.querySelectorAll('[data-rollout="${args.rollout}"]')]
  .filter((e) => e.dataset.count !== "eta")
  .map((e) => [(e.dataset.wave !== undefined ? e.dataset.wave + "/" : "") + e.dataset.count, e.textContent])))`;

async function main() {
  const problems = [];
  const { targetId } = await send("Target.createTarget", { url: "about:blank" });
  ({ sessionId: session } = await send("Target.attachToTarget", { targetId, flatten: true }));
  await send("Runtime.enable", {}, session);
  await send("Log.enable", {}, session);
  await send("Page.enable", {}, session);
  await send("Page.navigate", { url: args.base + "/" + (args.token ? "#token=" + args.token : "") }, session);
  const deadline = Date.now() + 60000;
  let match = false, last = "";
  while (Date.now() < deadline) {
    const loaded = await evaluate(`document.body && document.body.dataset.loaded === "true"`);
    if (loaded) {
      const want = expected(await apiRollout());
      const shown = JSON.parse(await evaluate(SHOWN));
      const diff = Object.keys(want).filter((k) => shown[k] !== want[k]);
      last = diff.map((k) => k + ": page " + shown[k] + ", api " + want[k]).join("; ");
      if (diff.length === 0) {
        const sql = args.sqlstate ? await evaluate(`!!document.querySelector('[data-sqlstate="${args.sqlstate}"]')`) : true;
        if (sql) { match = true; break; }
        last = "no failure with SQLSTATE " + args.sqlstate + " shown";
      }
    } else {
      last = "the page did not draw: " + (await evaluate(`document.getElementById("status")?.textContent`));
    }
    await sleep(250);
  }
  if (!match) problems.push("the page does not show the API's numbers: " + last);
  else console.log("dashboard_check: rollout " + args.rollout + " as the API has it: " + (await evaluate(SHOWN)));
  const shot = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true }, session);
  writeFileSync(args.screenshot, Buffer.from(shot.data, "base64"));
  writeFileSync(args.dom, await evaluate("document.documentElement.outerHTML"));
  await sleep(300); // late console messages
  for (const e of errors) problems.push(e);
  return problems;
}

const timer = setTimeout(() => { console.log("dashboard_check: timed out\n" + chromeErr); finish(1); }, 90000);
function finish(code) {
  clearTimeout(timer);
  try { chrome.kill("SIGKILL"); } catch (e) { /* gone */ }
  try { rmSync(profile, { recursive: true, force: true }); } catch (e) { /* best effort */ }
  process.exit(code);
}
chrome.on("exit", (c) => { if (pending.size) { console.log("dashboard_check: chromium exited " + c + "\n" + chromeErr); finish(1); } });
main().then((problems) => {
  for (const p of problems) console.log("dashboard_check: " + p);
  finish(problems.length ? 1 : 0);
}, (e) => { console.log("dashboard_check: " + e.message + "\n" + chromeErr); finish(1); });
