// Pricing page: one product's price, elasticity ± uncertainty, competitor, stock, guardrails,
// history, demand curve and why the demand forecast is what it is, refreshed on every price
// change pushed for it.
"use strict";
const select = document.getElementById("sku");

function rows(table, pairs) {
  table.replaceChildren(...pairs.map(([k, v]) => {
    const tr = document.createElement("tr");
    tr.innerHTML = "<th></th><td></td>";
    tr.children[0].textContent = k;
    tr.children[1].textContent = v;
    return tr;
  }));
}

async function show(sku) {
  const d = await tf.json(`/pricing/${encodeURIComponent(sku)}`);
  const c = d.current;
  const el = c.elasticity == null ? "not learned yet" :
    `${c.elasticity.toFixed(2)} ± ${(c.elasticity_std ?? 0).toFixed(2)} (${c.observations} observations)`;
  const evidence = `${c.evidence_views} views, ${c.evidence_units.toFixed(0)} units, ` +
    `${c.exposure_hours.toFixed(1)} exposure h`;
  const prior = c.elasticity_prior == null ? "–" :
    `${c.elasticity_prior.toFixed(2)} ± ${(c.elasticity_prior_std ?? 0).toFixed(2)}`;
  rows(document.getElementById("now"), [
    ["price", tf.money(c.price)], ["previous", tf.money(c.previous_price)],
    ["updated", c.updated_at || "–"], ["reason", c.reason || "–"], ["elasticity", el],
    ["evidence", evidence], ["category prior", prior], ["latest decision", c.decision || "–"],
    ["lowest competitor", tf.money(d.min_competitor_price)],
    ["gap to competitor", d.competitor_gap == null ? "–" : `${(100 * d.competitor_gap).toFixed(1)} %`],
    ["on hand", d.on_hand ?? "–"], ["days of cover", d.days_of_cover == null ? "–" : d.days_of_cover.toFixed(1)],
    ["units 24 h", d.units_24h ?? "–"], ["unit cost", tf.money(d.unit_cost)], ["list price", tf.money(d.list_price)],
  ]);
  const g = d.guardrails;
  rows(document.getElementById("rails"), g ? [
    ["floor", tf.money(g.floor)], ["ceiling", tf.money(g.ceiling)],
    ["competitor cap", tf.money(g.competitor_cap)], ["max step", `${(100 * g.max_step).toFixed(0)} %`],
    ["changes in the last hour", `${g.changes_last_hour} of ${g.max_changes_per_hour}`],
    ["status", g.within ? "within guardrails" : "OUTSIDE guardrails"], ["notes", g.notes.join("; ") || "–"],
  ] : [["status", "no catalogue entry"]]);
  tf.plot(document.getElementById("history"),
    d.history.map((h) => ({ x: Date.parse(h.at), y: h.price })), { x: "time", y: "price" });
  tf.plot(document.getElementById("curve"),
    d.demand_curve.map((p) => ({ x: p.price, y: p.expected_units_24h })), { x: "price →", y: "units" });
  why(d.explanation);
  const changes = d.history.slice(-15).reverse().map((h) => [h.at, `${tf.money(h.previous_price)} → ${tf.money(h.price)}: ${h.reason}`]);
  rows(document.getElementById("changes"), changes.length ? changes : [["–", "no change published yet"]]);
}

// The demand forecast as base × factors: one bar per top feature, right for up, left for down.
function why(e) {
  const table = document.getElementById("why");
  const summary = document.getElementById("why-summary");
  if (!e) {
    summary.textContent = "no explanation: no demand model with its native booster is loaded";
    table.replaceChildren();
    return;
  }
  summary.textContent = `${e.model}: ${e.base_units.toFixed(2)} units/day with no information ` +
    `→ ${e.forecast_units.toFixed(2)} for this product now (other features ×${e.other_factor.toFixed(3)})`;
  const widest = Math.max(...e.top.map((c) => Math.abs(c.contribution)), 1e-9);
  table.replaceChildren(...e.top.map((c) => {
    const tr = document.createElement("tr");
    tr.innerHTML = "<th></th><td></td><td class=\"why-bar\"><span></span></td>";
    tr.children[0].textContent = `${c.feature} = ${Number(c.value.toPrecision(4))}`;
    tr.children[1].textContent = `×${c.factor.toFixed(3)}`;
    const bar = tr.children[2].firstChild;
    bar.style.width = `${(50 * Math.abs(c.contribution)) / widest}%`;
    bar.className = c.contribution >= 0 ? "up" : "down";
    return tr;
  }));
}

async function start() {
  const products = await tf.json("/products?limit=1000");
  for (const p of products) select.add(new Option(`${p.sku} (${p.category})`, p.sku));
  const wanted = new URLSearchParams(location.search).get("sku");
  if (wanted) select.value = wanted;
  select.addEventListener("change", () => show(select.value));
  tf.live("/ws/prices", (u) => { if (u.sku === select.value) show(u.sku); },
    (s) => { document.getElementById("live").textContent = `live ${s}`; });
  if (select.value) await show(select.value);
}
start().catch((e) => { document.querySelector("main").textContent = `could not load: ${e.message}`; });
