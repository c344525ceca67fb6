// "My orders": each order's status badge follows the customer's /ws/notifications/ stream.
// The list shows only the latest status, so the highest seq per order wins and nothing needs replaying
// except after each (re)connect, when the orders changed since the page's last snapshot are re-read from
// GET /api/orders/?updated_since= (every page of them: nothing is capped).

import { liveStream } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes, pageData } from "./format.js";
import { fetchAllOrders, oneAtATime, sinceBefore } from "./orders-api.js";

const data = pageData();
localizeTimes();
const indicator = bindIndicator(document.getElementById("connection"));

function apply(orderId, seq, status) {
  const card = document.querySelector(`[data-order-id="${orderId}"]`);
  if (!card || seq <= Number(card.dataset.seq)) return;
  card.dataset.seq = seq;
  const badge = card.querySelector(".status-badge");
  badge.dataset.status = status;
  badge.textContent = data.labels[status] || status;
  card.classList.add("changed");
}

// `asOf`: the server time of the last snapshot (the page's render, then each catch-up). Also run on the
// first connect: a change between the render and the socket joining its stream is read here.
let asOf = data.asOf;

const catchUp = oneAtATime(async () => {
  const read = await fetchAllOrders({ updated_since: sinceBefore(asOf) });
  for (const order of read.orders) apply(order.id, order.seq, order.status);
  asOf = read.asOf;
});

// Each card keeps its own seq (apply drops anything not newer), and every open re-reads the list: so no order is
// subscribed for a replay (followUnseen: false), which for 50 cards would also be 50 frames on every reconnect.
liveStream({
  path: "/ws/notifications/",
  followUnseen: false,
  onState: (state, detail) => indicator("orders", state, detail),
  onOpen: () => catchUp(),
  onFrame(frame) {
    if (frame.type === "order.status") apply(frame.order_id, frame.seq, frame.status);
  },
});
