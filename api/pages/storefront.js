// Storefront: prices change in place over /ws/prices; clicks and searches are real events
// (POST /events/user-activity) and the shopper's two strips follow
// /ws/recommendations/{user}?list=again (their own items) and ?list=discover (new to them).
// POST /session gives the browser its shopper (an HttpOnly session cookie): the clicks and
// the strips are that shopper's, and nobody else's.
// The search box asks GET /search (for this shopper) and shows its facets.
"use strict";
const grid = document.getElementById("grid");
const strips = {
  discover: [document.getElementById("strip"), document.getElementById("reco-source")],
  again: [document.getElementById("again-strip"), document.getElementById("again-source")],
};
const shopper = document.getElementById("shopper");
let session = null;

function card(product) {
  const el = document.createElement("div");
  el.className = "card";
  el.dataset.sku = product.sku;
  el.innerHTML = `<div class="name"></div><div class="sku"></div><div class="cat"></div><div class="price"></div>`;
  el.querySelector(".name").textContent = product.name || names[product.sku] || product.sku;
  el.querySelector(".sku").textContent = product.sku;
  el.querySelector(".cat").textContent = product.category || "";
  el.querySelector(".price").textContent = tf.money(product.price);
  el.addEventListener("click", () => view(product.sku));
  return el;
}

async function send(fields, what) {
  const event = {
    event_id: tf.uuid(), event_time: new Date().toISOString(), user_id: session.user_id,
    session_id: session.session_id, ...fields,
  };
  try {
    await tf.json("/events/user-activity", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(event),
    });
  } catch (e) { document.getElementById("live").textContent = `${what} not sent: ${e.message}`; }
}

function view(sku) { return send({ action: "view", sku }, "click"); }

const filters = { category: null, min_price: null, max_price: null };

function facetLink(label, chosen, choose) {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.textContent = label;
  if (chosen) a.className = "chosen";
  a.addEventListener("click", () => { choose(); search(false); });
  li.append(a);
  return li;
}

function showResults(body) {
  document.getElementById("results").hidden = false;
  document.getElementById("result-count").textContent =
    `(${body.total} found${body.ranked_by === "search+ranker" ? ", personalised" : ""})`;
  for (const hit of body.items) { names[hit.sku] = hit.title; if (hit.price != null) prices[hit.sku] = hit.price; }
  document.getElementById("result-grid").replaceChildren(
    ...body.items.map((h) => card({ sku: h.sku, name: h.title, category: h.category, price: prices[h.sku] ?? h.price })));
  const cats = body.facets.categories.map((f) => facetLink(`${f.value} (${f.count})`,
    filters.category === f.value, () => { filters.category = filters.category === f.value ? null : f.value; }));
  document.getElementById("facet-categories").replaceChildren(...cats);
  const buckets = body.facets.prices.filter((b) => b.count > 0).map((b) => facetLink(
    `${b.to == null ? `${b.from}+` : `${b.from ?? 0}–${b.to}`} (${b.count})`,
    filters.min_price === (b.from ?? null) && filters.max_price === (b.to ?? null),
    () => {
      const same = filters.min_price === (b.from ?? null) && filters.max_price === (b.to ?? null);
      filters.min_price = same ? null : (b.from ?? null);
      filters.max_price = same ? null : (b.to == null ? null : b.to - 0.01);
    }));
  document.getElementById("facet-prices").replaceChildren(...buckets);
}

async function search(typed) {
  const q = document.getElementById("q").value.trim();
  const params = new URLSearchParams({ sort: document.getElementById("sort").value, user: session.user_id });
  if (q) params.set("q", q);
  for (const [k, v] of Object.entries(filters)) if (v != null) params.set(k, v);
  const status = document.getElementById("search-status");
  try {
    showResults(await tf.json(`/search?${params}`));
    status.textContent = "";
  } catch (e) { status.textContent = `search unavailable: ${e.message}`; return; }
  if (typed && q) await send({ action: "search", query: q.slice(0, 512) }, "search");
}

function showPrice(update) {
  for (const el of document.querySelectorAll(`[data-sku="${CSS.escape(update.sku)}"] .price`)) {
    const before = Number(el.textContent);
    el.textContent = tf.money(update.price);
    el.classList.remove("up", "down");
    el.classList.add(update.price >= before ? "up" : "down");
  }
}

function showRecommendations(list) {
  const [strip, source] = strips[list.list];
  const items = list.items.map((i) => card({ sku: i.sku, price: prices[i.sku] }));
  if (items.length === 0) {
    const none = document.createElement("span");
    none.className = "muted";
    none.textContent = "nothing yet";
    items.push(none);
  }
  strip.replaceChildren(...items);
  source.textContent = `(${list.source})`;
  strip.dataset.skus = list.items.map((i) => i.sku).join(",");
}

const prices = {};
const names = {};
async function start() {
  session = await tf.json("/session", { method: "POST" });
  shopper.textContent = session.user_id;
  const products = await tf.json("/products?limit=1000");
  for (const p of products) { prices[p.sku] = p.price; if (p.name) names[p.sku] = p.name; }
  document.getElementById("search").addEventListener("submit", (e) => {
    e.preventDefault();
    Object.assign(filters, { category: null, min_price: null, max_price: null });
    search(true);
  });
  document.getElementById("sort").addEventListener("change", () => search(false));
  grid.replaceChildren(...products.map(card));
  tf.live("/ws/prices", (u) => { prices[u.sku] = u.price; showPrice(u); },
    (s) => { document.getElementById("live").textContent = `prices ${s}`; });
  const user = encodeURIComponent(session.user_id);
  for (const name of Object.keys(strips)) {
    tf.live(`/ws/recommendations/${user}?list=${name}`, showRecommendations);
  }
}
start().catch((e) => { grid.textContent = `could not load the shop: ${e.message}`; });
