// The staff board: every order's status changes (from /ws/notifications/ as staff), highlighted as they
// arrive; presence frames fill "Watching"; the staff chat feed counts unread chats per order.
// After every (re)connect the board reconciles with GET /api/orders/, so changes made while it was
// disconnected are shown (and highlighted) too.

import { LiveSocket } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes, pageData, timeElement } from "./format.js";

const data = pageData();
localizeTimes();
const indicator = bindIndicator(document.getElementById("connection"));
const body = document.getElementById("board-body");
const announcer = document.getElementById("board-announcer");
const label = (status) => data.labels[status] || status;
const HIGHLIGHT_MS = 15000;

function rowFor(orderId) {
  return body.querySelector(`tr[data-order-id="${orderId}"]`);
}

function cell(text, name) {
  const td = document.createElement("td");
  td.dataset.label = name;
  td.textContent = text;
  return td;
}

// A row for an order the page did not render (created after it loaded).
function newRow(orderId, number) {
  body.querySelector("tr.empty")?.remove();
  const row = document.createElement("tr");
  row.dataset.orderId = orderId;
  row.dataset.seq = "0";
  row.dataset.customer = "";
  const head = document.createElement("th");
  head.scope = "row";
  head.dataset.label = "Order";
  const link = document.createElement("a");
  link.href = `/orders/${orderId}/`;
  link.textContent = number;
  const note = document.createElement("span");
  note.className = "change-note";
  head.append(link, note);
  const status = cell("", "Status");
  const badge = document.createElement("span");
  badge.className = "status-badge";
  status.append(badge);
  const watchers = cell("—", "Watching");
  watchers.className = "watchers";
  const unread = cell("", "Unread chats");
  unread.className = "unread";
  const count = document.createElement("span");
  count.className = "unread-count";
  count.dataset.count = "0";
  count.textContent = "0";
  unread.append(count);
  const admin = cell("", "Admin");
  const adminLink = document.createElement("a");
  adminLink.href = `/admin/orders/order/${orderId}/change/`;
  adminLink.textContent = "Open in admin";
  admin.append(adminLink);
  row.append(head, cell("—", "Customer"), status, cell("", "Changed"), watchers, unread, admin);
  return row;
}

function highlight(row, text) {
  row.classList.remove("changed");
  void row.offsetWidth; // restart the CSS animation
  row.classList.add("changed");
  row.querySelector(".change-note").textContent = ` ${text}`;
  clearTimeout(row.highlightTimer);
  row.highlightTimer = setTimeout(() => {
    row.classList.remove("changed");
    row.querySelector(".change-note").textContent = "";
  }, HIGHLIGHT_MS);
}

function applyStatus({ order_id: orderId, number, seq, status, at }) {
  let row = rowFor(orderId);
  if (row && seq <= Number(row.dataset.seq)) return; // already shown
  if (!row) row = newRow(orderId, number);
  row.dataset.seq = seq;
  const badge = row.querySelector(".status-badge");
  badge.dataset.status = status;
  badge.textContent = label(status);
  const changed = row.querySelector('[data-label="Changed"]');
  changed.replaceChildren(at ? timeElement(at) : "");
  body.prepend(row); // most recently changed first
  highlight(row, "(just changed)");
  announcer.textContent = `${number || row.querySelector("a").textContent} is now ${label(status)}.`;
}

function applyPresence({ order_id: orderId, watchers }) {
  const row = rowFor(orderId);
  if (!row) return;
  const names = [...new Set(watchers.map((w) => w.user))].filter((user) => user !== data.user);
  row.querySelector(".watchers").textContent = names.length ? names.join(", ") : "—";
}

function applyChat({ order_id: orderId, sender }) {
  const row = rowFor(orderId);
  if (!row) return;
  const count = row.querySelector(".unread-count");
  // Unread: the customer's messages since staff last wrote; any staff reply answers them all.
  const customer = row.dataset.customer;
  const next = customer && sender !== customer ? 0 : Number(count.dataset.count) + 1;
  count.dataset.count = next;
  count.textContent = next;
  if (next > 0) highlight(row, "(new message)");
}

function applyStuck({ orders }) {
  const alert = document.getElementById("stuck-alert");
  if (!orders.length) {
    alert.hidden = true;
    return;
  }
  alert.textContent = `Stuck: ${orders.map((o) => `${o.number} (${label(o.status)})`).join(", ")}`;
  alert.hidden = false;
  for (const row of body.querySelectorAll("tr.stuck")) row.classList.remove("stuck");
  for (const o of orders) rowFor(o.order_id)?.classList.add("stuck");
}

// What changed while we were not connected. On the first connect the page is fresh: only changes made
// since it was rendered count, and orders the board did not render (older than its window) stay out.
let connectedBefore = false;

async function reconcile() {
  const firstTime = !connectedBefore;
  connectedBefore = true;
  const response = await fetch("/api/orders/", { credentials: "same-origin" });
  if (!response.ok) return;
  const { orders } = await response.json();
  for (const order of [...orders].reverse()) {
    const row = rowFor(order.id);
    if (row ? order.seq > Number(row.dataset.seq) : !firstTime) {
      applyStatus({ order_id: order.id, number: order.number, seq: order.seq, status: order.status,
                    at: order.updated_at });
    }
  }
}

new LiveSocket({
  url: () => "/ws/notifications/",
  onState: (state, detail) => indicator("board", state, detail),
  onOpen: () => reconcile(),
  onFrame(frame) {
    if (frame.type === "order.status") applyStatus(frame);
    else if (frame.type === "presence") applyPresence(frame);
    else if (frame.type === "chat.message") applyChat(frame);
    else if (frame.type === "order.stuck") applyStuck(frame);
  },
}).start();
