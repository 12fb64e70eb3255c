// Admin page: nothing shows without a token from POST /admin/token (OAuth2 password flow).
"use strict";
const TOKEN = "tillflow-admin-token";
const auth = () => ({ Authorization: `Bearer ${sessionStorage.getItem(TOKEN)}` });
const loginForm = document.getElementById("login");
const consoleEl = document.getElementById("console");

function requireLogin(message) {
  sessionStorage.removeItem(TOKEN);
  consoleEl.hidden = true;
  loginForm.hidden = false;
  document.getElementById("login-error").textContent = message || "";
}

async function call(url, options = {}) {
  const answer = await fetch(url, { ...options, headers: { ...auth(), ...(options.headers || {}) } });
  const body = await answer.json().catch(() => ({}));
  if (answer.status === 401) { requireLogin(body.detail); throw new Error(body.detail); }
  if (!answer.ok) throw new Error(body.detail || answer.statusText);
  return body;
}

function table(headers, rows) {
  const t = document.createElement("table");
  t.innerHTML = `<tr>${headers.map((h) => `<th>${h}</th>`).join("")}</tr>`;
  for (const r of rows) {
    const tr = t.insertRow();
    for (const cell of r) {
      const td = tr.insertCell();
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
    }
  }
  return t;
}

function action(label, run) {
  const b = document.createElement("button");
  b.textContent = label;
  b.addEventListener("click", async () => {
    document.getElementById("action-error").textContent = "";
    try { await run(); await load(); } catch (e) { document.getElementById("action-error").textContent = e.message; }
  });
  return b;
}

async function load() {
  const models = await call("/admin/models");
  const box = document.getElementById("models");
  box.replaceChildren(...models.map((m) => {
    const div = document.createElement("div");
    div.innerHTML = `<h4></h4>`;
    div.querySelector("h4").textContent =
      `${m.name}: current v${m.current ?? "–"}, serving ${m.loaded ?? "nothing"}${m.error ? ` (${m.error})` : ""}`;
    div.append(table(["version", "created", "metrics", ""], m.versions.map((v) => [
      `v${v.version}${v.current ? " (current)" : ""}`, v.created_at || "", JSON.stringify(v.metrics),
      v.current ? "" : action("promote", () => call(`/admin/models/${m.name}/promote`, {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ version: v.version }) })),
    ])));
    div.append(action("roll back", () => call(`/admin/models/${m.name}/rollback`, { method: "POST" })));
    return div;
  }));
  try {
    const jobs = await call("/admin/jobs");
    document.getElementById("job-actions").replaceChildren(...jobs.jobs.map((j) =>
      action(`run ${j}`, () => call(`/admin/jobs/${j}`, { method: "POST" }))));
    document.getElementById("schedule").replaceChildren(table(
      ["scheduled job", "every", "last started", "runs next"],
      jobs.schedule.map((s) => [s.job, `${s.every_s} s`, s.last_at || "never", s.next_at || "at the next poll"])));
    document.getElementById("runs").replaceChildren(table(
      ["job", "status", "started", "seconds", "rows in", "rows out", "error"],
      jobs.runs.map((r) => [r.job, r.status, r.started_at, r.duration_s ?? "", r.rows_in ?? "", r.rows_out ?? "", r.error || ""])));
  } catch (e) { document.getElementById("job-actions").textContent = e.message; }
  const drift = await call("/admin/drift");
  document.getElementById("drift").replaceChildren(
    `${drift.detections} detections. `,
    table(["at", "details"], drift.recent.map((d) => [d.at, JSON.stringify(d.fields)])));
  governance(await call("/admin/governance"));
  document.getElementById("who").textContent = "logged in";
  loginForm.hidden = true;
  consoleEl.hidden = false;
}

// The latest audit (one row per check and dimension) and skew run (one row per feature).
function governance(g) {
  const ratio = (x) => (x == null ? "–" : x.toFixed(3));
  const a = g.audit;
  document.getElementById("audit").replaceChildren(...(a ? [
    `${a.audited_at}, models ${Object.entries(a.models).map(([k, v]) => `${k} ${v}`).join(", ")}. `,
    table(["check", "by", "metric", "ratio (lowest ÷ highest)", "threshold", "lowest", "highest", "groups", ""],
      a.disparities.map((d) => [d.check, d.dimension, d.metric, ratio(d.ratio), ratio(d.threshold),
        d.lowest, d.highest, d.groups, d.breached ? "BREACH" : "ok"])),
  ] : ["no audit yet: run the audit job"]));
  const s = g.skew;
  document.getElementById("skew").replaceChildren(...(s ? [
    `${s.checked_at}, ${s.entities} products sampled. `,
    table(["feature", "compared", "mismatches", "rate", "max |diff|", "threshold", ""],
      s.features.map((f) => [f.feature, f.compared, f.mismatches, f.mismatch_rate.toFixed(3),
        f.max_abs_diff.toFixed(3), f.threshold, f.breached ? "SKEW" : "ok"])),
  ] : ["no skew run yet: run the skew job"]));
}

loginForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(loginForm);
  const answer = await fetch("/admin/token", { method: "POST", body: new URLSearchParams(form) });
  const body = await answer.json().catch(() => ({}));
  if (!answer.ok) { requireLogin(body.detail || "login failed"); return; }
  sessionStorage.setItem(TOKEN, body.access_token);
  await load().catch((e) => requireLogin(e.message));
});

if (sessionStorage.getItem(TOKEN)) load().catch((e) => requireLogin(e.message));
else requireLogin("");
