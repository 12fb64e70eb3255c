// Storefront: prices change in place over /ws/prices; clicks are real events
// (POST /events/user-activity) and the shopper's two strips follow
// /ws/recommendations/{user}?list=again (their own items) and ?list=discover (new to them).
"use strict";
const grid = document.getElementById("grid");
const strips = {
  discover: [document.getElementById("strip"), document.getElementById("reco-source")],
  again: [document.getElementById("again-strip"), document.getElementById("again-source")],
};
const shopper = document.getElementById("shopper");
const session = tf.uuid();
let recoSockets = [];

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
    event_id: tf.uuid(), event_time: new Date().toISOString(), user_id: shopper.value,
    session_id: session, action: "view", sku,
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
async function start() {
  for (let i = 1; i <= 30; i++) {
    const id = `u-${String(i).padStart(6, "0")}`;
    shopper.add(new Option(id, id));
  }
  const params = new URLSearchParams(location.search);
  if (params.get("user")) shopper.add(new Option(params.get("user"), params.get("user"), true, true));
  const products = await tf.json("/products?limit=1000");
  for (const p of products) prices[p.sku] = p.price;
  grid.replaceChildren(...products.map(card));
  tf.live("/ws/prices", (u) => { prices[u.sku] = u.price; showPrice(u); },
    (s) => { document.getElementById("live").textContent = `prices ${s}`; });
  const follow = () => {
    for (const socket of recoSockets) socket.close();
    const user = encodeURIComponent(shopper.value);
    recoSockets = Object.keys(strips).map(
      (name) => tf.live(`/ws/recommendations/${user}?list=${name}`, showRecommendations));
  };
  shopper.addEventListener("change", follow);
  follow();
}
start().catch((e) => { grid.textContent = `could not load the shop: ${e.message}`; });
