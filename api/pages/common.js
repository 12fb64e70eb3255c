// Shared by the pages: JSON fetch with readable errors, websocket URLs, money formatting.
"use strict";
const tf = {
  async json(url, options) {
    const answer = await fetch(url, options);
    const body = await answer.json().catch(() => ({}));
    if (!answer.ok) throw new Error(body.detail || `${answer.status} ${answer.statusText}`);
    return body;
  },
  ws(path) { return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`; },
  money(x) { return x == null ? "–" : Number(x).toFixed(2); },
  uuid() { return crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`; },
  // A websocket that reconnects after a second when it drops.
  live(path, onMessage, onState) {
    let socket;
    const open = () => {
      socket = new WebSocket(tf.ws(path));
      socket.onopen = () => onState && onState("live");
      socket.onmessage = (m) => onMessage(JSON.parse(m.data));
      socket.onclose = () => { onState && onState("reconnecting…"); setTimeout(open, 1000); };
    };
    open();
    return { close() { socket.onclose = null; socket.close(); } };
  },
};

// A minimal line plot into an <svg>: points [{x, y}], axes labelled with min/max.
tf.plot = function (svg, points, label) {
  svg.replaceChildren();
  if (!points.length) { svg.innerHTML = `<text x="10" y="20" fill="#6b7385">no data yet</text>`; return; }
  const W = 600, H = 220, P = 36;
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)], [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x) => P + ((x - x0) / (x1 - x0 || 1)) * (W - 2 * P);
  const sy = (y) => H - P - ((y - y0) / (y1 - y0 || 1)) * (H - 2 * P);
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join("");
  svg.innerHTML = `<path d="${path}" fill="none" stroke="#0b7a5a" stroke-width="2"/>` +
    `<text x="4" y="${P - 8}" font-size="11" fill="#6b7385">${label.y} ${y1.toFixed(2)}</text>` +
    `<text x="4" y="${H - P + 14}" font-size="11" fill="#6b7385">${y0.toFixed(2)}</text>` +
    `<text x="${W - P}" y="${H - 6}" font-size="11" text-anchor="end" fill="#6b7385">${label.x}</text>`;
};
