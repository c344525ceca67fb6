// "My orders": each order's status badge follows the customer's /ws/notifications/ stream, and a new order
// (a frame for an order the page has no card for) gets its card on top of the first page, read from
// /orders/cards/ as the page renders it; other pages say there are new orders and link to the first.
// The list shows only the latest status, so the highest seq per order wins and nothing needs replaying
// except after each (re)connect, when the orders changed since the page's last snapshot are re-read from
// GET /api/orders/?updated_since= (every page of them: nothing is capped).

import { liveStream } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes, pageData, timeElement } from "./format.js";
import { fetchAllOrders, oneAtATime, sinceBefore } from "./orders-api.js";

const data = pageData();
localizeTimes();
const indicator = bindIndicator(document.getElementById("connection"));
const list = document.querySelector(".order-list");

const cardFor = (orderId) => list.querySelector(`[data-order-id="${orderId}"]`);
const cardIds = () => [...list.querySelectorAll("[data-order-id]")].map((card) => Number(card.dataset.orderId));

function apply({ order_id: orderId, number, seq, status, at }) {
  const card = cardFor(orderId);
  if (!card) {
    newOrder(orderId, number, seq, at);
    return;
  }
  if (seq <= Number(card.dataset.seq)) return;
  card.dataset.seq = seq;
  const badge = card.querySelector(".status-badge");
  badge.dataset.status = status;
  badge.textContent = data.labels[status] || status;
  const updated = card.querySelector(".updated");
  if (updated && at) {
    updated.querySelector("time").replaceWith(timeElement(at));
    updated.hidden = false;
  }
  card.classList.add("changed");
}

// On the first page an order without a card and with a higher id than every card is new (the list is newest
// first; a lower id is on a later page). Another page cannot tell a new order from one on an earlier page but
// by its first event (seq 1) coming after the render.
const pendingCards = new Set();
const newNumbers = new Set();
const renderedAt = Date.parse(data.asOf);

function newOrder(orderId, number, seq, at) {
  if (cardIds().some((id) => id > orderId)) return;
  if (!data.addsOrders) {
    if (seq !== 1 || !(Date.parse(at) > renderedAt)) return;
    newNumbers.add(number);
    const notice = document.getElementById("orders-new");
    notice.querySelector(".new-text").textContent =
      data.text.newOrders.replace("{numbers}", [...newNumbers].join(", "));
    notice.hidden = false;
    return;
  }
  if (pendingCards.has(orderId)) return;
  pendingCards.add(orderId);
  addCards([orderId]).finally(() => pendingCards.delete(orderId));
}

async function addCards(orderIds) {
  try {
    const query = new URLSearchParams(orderIds.map((id) => ["id", String(id)]));
    const response = await fetch(`/orders/cards/?${query}`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`GET /orders/cards/ answered ${response.status}`);
    const holder = document.createElement("template");
    holder.innerHTML = await response.text();
    localizeTimes(holder.content);
    // Newest last, so the newest ends up on top.
    for (const card of [...holder.content.querySelectorAll("[data-order-id]")].reverse()) {
      if (cardFor(card.dataset.orderId)) continue; // added meanwhile
      card.classList.add("changed");
      list.prepend(card);
    }
    document.getElementById("no-orders")?.remove();
  } catch (error) {
    console.warn("Could not read the new order; the next reconnect reads it.", error);
  }
}

// `asOf`: the server time of the last snapshot (the page's render, then each catch-up). Also run on the
// first connect: a change between the render and the socket joining its stream is read here.
let asOf = data.asOf;

const catchUp = oneAtATime(async () => {
  const read = await fetchAllOrders({ updated_since: sinceBefore(asOf) });
  for (const order of read.orders) {
    apply({ order_id: order.id, number: order.number, seq: order.seq, status: order.status,
            at: order.status_changed_at });
  }
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
    if (frame.type === "order.status") apply(frame);
  },
});
