// Storefront: prices change in place over /ws/prices; clicks are real events
// (POST /events/user-activity) and the shopper's strip follows /ws/recommendations/{user}.
// POST /session gives the browser its shopper (an HttpOnly session cookie): the clicks and
// the strip are that shopper's, and nobody else's.
"use strict";
const grid = document.getElementById("grid");
const strip = document.getElementById("strip");
const shopper = document.getElementById("shopper");
let session = null;

function card(product) {
  const el = document.createElement("div");
  el.className = "card";
  el.dataset.sku = product.sku;
  el.innerHTML = `<div class="sku"></div><div class="cat"></div><div class="price"></div>`;
  el.querySelector(".sku").textContent = product.sku;
  el.querySelector(".cat").textContent = product.category || "";
  el.querySelector(".price").textContent = tf.money(product.price);
  el.addEventListener("click", () => view(product.sku));
  return el;
}

async function view(sku) {
  const event = {
    event_id: tf.uuid(), event_time: new Date().toISOString(), user_id: session.user_id,
    session_id: session.session_id, action: "view", sku,
  };
  try {
    await tf.json("/events/user-activity", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(event),
    });
  } catch (e) { document.getElementById("live").textContent = `click not sent: ${e.message}`; }
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
  strip.replaceChildren(...list.items.map((i) => card({ sku: i.sku, price: prices[i.sku] })));
  document.getElementById("reco-source").textContent = `(${list.source})`;
  strip.dataset.skus = list.items.map((i) => i.sku).join(",");
}

const prices = {};
async function start() {
  session = await tf.json("/session", { method: "POST" });
  shopper.textContent = session.user_id;
  const products = await tf.json("/products?limit=1000");
  for (const p of products) prices[p.sku] = p.price;
  grid.replaceChildren(...products.map(card));
  tf.live("/ws/prices", (u) => { prices[u.sku] = u.price; showPrice(u); },
    (s) => { document.getElementById("live").textContent = `prices ${s}`; });
  tf.live(`/ws/recommendations/${encodeURIComponent(session.user_id)}`, showRecommendations);
}
start().catch((e) => { grid.textContent = `could not load the shop: ${e.message}`; });
