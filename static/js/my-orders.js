// "My orders": each order's status badge follows the customer's /ws/notifications/ stream.
// The list shows only the latest status, so the highest seq per order wins and nothing needs replaying
// except after a reconnect, when the list is re-read from GET /api/orders/.

import { LiveSocket } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes, pageData } from "./format.js";

const data = pageData();
localizeTimes();
const indicator = bindIndicator(document.getElementById("connection"));
let connectedBefore = false;

function apply(orderId, seq, status) {
  const card = document.querySelector(`[data-order-id="${orderId}"]`);
  if (!card || seq <= Number(card.dataset.seq)) return;
  card.dataset.seq = seq;
  const badge = card.querySelector(".status-badge");
  badge.dataset.status = status;
  badge.textContent = data.labels[status] || status;
  card.classList.add("changed");
}

async function catchUp() {
  if (!connectedBefore) {
    connectedBefore = true;
    return;
  }
  const response = await fetch("/api/orders/", { credentials: "same-origin" });
  if (!response.ok) return;
  for (const order of (await response.json()).orders) apply(order.id, order.seq, order.status);
}

new LiveSocket({
  url: () => "/ws/notifications/",
  onState: (state, detail) => indicator("orders", state, detail),
  onOpen: () => catchUp(),
  onFrame(frame) {
    if (frame.type === "order.status") apply(frame.order_id, frame.seq, frame.status);
  },
}).start();
