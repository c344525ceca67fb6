// The staff board: every order's status changes (from /ws/notifications/ as staff), highlighted as they
// arrive; presence frames fill "Watching"; the staff chat feed counts unread chats per order.
// After every (re)connect the board reconciles: it reads every order changed since its last snapshot (the
// page's render, then each reconcile) from GET /api/orders/?updated_since=, so changes made while it was
// disconnected are shown (and highlighted) too, whichever orders they touch.

import { liveStream } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes, pageData, timeElement } from "./format.js";
import { fetchAllOrders, fetchOrder, oneAtATime, sinceBefore } from "./orders-api.js";

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

// A row for an order the page did not render, from the page's blank row (templates/orders/board_row.html).
// Its customer comes from `order` (the staff order JSON) or, for a live frame, from the order fetched next.
function newRow(orderId, number, order = null) {
  body.querySelector("tr.empty")?.remove();
  const row = document.getElementById("board-row").content.firstElementChild.cloneNode(true);
  row.dataset.orderId = orderId;
  const link = row.querySelector("th a");
  link.href = `/orders/${orderId}/`;
  link.textContent = number;
  const admin = row.querySelector(".admin-link");
  admin.href = `/admin/orders/order/${orderId}/change/`;
  admin.querySelector(".visually-hidden").textContent = ` ${number}`;
  if (order) fillStaffFields(row, order);
  else fillFromServer(row);
  return row;
}

// The customer, the unread count and the at-risk flag, from the database: what the chat feed counts from.
function fillStaffFields(row, { customer, awaiting_reply: unread, at_risk: atRisk }) {
  row.dataset.customer = customer;
  row.querySelector(".customer").textContent = customer;
  setUnread(row, unread);
  row.dataset.atRisk = String(Boolean(atRisk));
  row.querySelector(".at-risk-badge").hidden = !atRisk;
}

async function fillFromServer(row) {
  try {
    fillStaffFields(row, await fetchOrder(row.dataset.orderId));
  } catch (error) {
    console.warn("Could not read the order's customer; the next chat message tries again.", error);
  }
}

function setUnread(row, count) {
  const unread = row.querySelector(".unread-count");
  unread.dataset.count = count;
  unread.textContent = count;
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

function applyStatus({ order_id: orderId, number, seq, status, at }, order = null) {
  let row = rowFor(orderId);
  if (row && seq <= Number(row.dataset.seq)) return; // already shown
  if (!row) row = newRow(orderId, number, order);
  row.dataset.seq = seq;
  showSeen(row);
  const badge = row.querySelector(".status-badge");
  badge.dataset.status = status;
  badge.textContent = label(status);
  const changed = row.querySelector('[data-label="Changed"]');
  changed.replaceChildren(at ? timeElement(at) : "");
  body.prepend(row); // most recently changed first
  highlight(row, "(just changed)");
  announcer.textContent = `${number || row.querySelector("a").textContent} is now ${label(status)}.`;
}

// "Seen by customer": whether the customer's pages acknowledged the order's latest event (order.seen frames).
function showSeen(row) {
  const cell = row.querySelector(".seen");
  const seen = Number(cell.dataset.seenSeq);
  cell.replaceChildren(...(seen && seen >= Number(row.dataset.seq) ? ["Seen ", timeElement(cell.dataset.seenAt)]
    : ["Not yet"]));
}

function applySeen({ order_id: orderId, seq, at }) {
  const row = rowFor(orderId);
  const cell = row?.querySelector(".seen");
  if (!cell || seq <= Number(cell.dataset.seenSeq)) return;
  cell.dataset.seenSeq = seq;
  cell.dataset.seenAt = at;
  showSeen(row);
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
  const customer = row.dataset.customer;
  if (!customer) {
    // Whose message it is cannot be told yet: the database's count includes it.
    fillFromServer(row);
    return;
  }
  // Unread: the customer's messages since staff last wrote; any staff reply answers them all.
  const next = sender === customer ? Number(row.querySelector(".unread-count").dataset.count) + 1 : 0;
  setUnread(row, next);
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

// An ISO time in microseconds since the epoch (Date keeps only milliseconds); null stays null.
function micros(iso) {
  if (!iso) return null;
  const fraction = (iso.match(/T[\d:]+\.(\d+)/) || [])[1] || "";
  return Math.floor(Date.parse(iso) / 1000) * 1e6 + Number(fraction.padEnd(6, "0").slice(0, 6));
}

// Whether an order ranks above `edge` in the board's order (selectors.board_orders: most recent status
// change first, never-changed last, then the higher id).
function ranksAbove(changedAt, id, edge) {
  const [mine, theirs] = [micros(changedAt), micros(edge.statusChangedAt)];
  if (mine !== theirs) return theirs === null || (mine !== null && mine > theirs);
  return id > edge.id;
}

// What changed while the board was not connected. `asOf` is the server time of its last snapshot (the
// page's render, then each reconcile): every change after it was either pushed live or is read here.
let asOf = data.asOf;
const byChangeTime = (a, b) => micros(a.status_changed_at) - micros(b.status_changed_at);

const reconcile = oneAtATime(async () => {
  const read = await fetchAllOrders({ updated_since: sinceBefore(asOf) });
  // Oldest change first, so the most recent ends up on top, as if the frames had arrived.
  for (const order of read.orders.filter((o) => o.status_changed_at).sort(byChangeTime)) {
    const row = rowFor(order.id);
    const status = { order_id: order.id, number: order.number, seq: order.seq, status: order.status,
                     at: order.status_changed_at };
    if (row) {
      applyStatus(status);
      fillStaffFields(row, order);
    } else if (!data.windowEdge || ranksAbove(order.status_changed_at, order.id, data.windowEdge)) {
      // Not on the board, yet among the most recently changed: its change was missed (an order below
      // the window's edge was merely not shown, and still is not).
      applyStatus(status, order);
    }
  }
  asOf = read.asOf;
});

// Rows keep their own seq (applyStatus drops anything not newer), and every open reconciles from the order list:
// so no order is subscribed for a replay (followUnseen: false), which for 200 rows would also be 200 frames on
// every reconnect.
liveStream({
  path: "/ws/notifications/",
  followUnseen: false,
  onState: (state, detail) => indicator("board", state, detail),
  onOpen: () => reconcile(),
  onFrame(frame) {
    if (frame.type === "order.status") applyStatus(frame);
    else if (frame.type === "presence") applyPresence(frame);
    else if (frame.type === "chat.message") applyChat(frame);
    else if (frame.type === "order.stuck") applyStuck(frame);
    else if (frame.type === "order.seen") applySeen(frame);
    // A new ETA may be the at-risk check's: the row re-reads its staff fields, the flag among them.
    else if (frame.type === "order.updated" && "eta" in frame && rowFor(frame.order_id)) {
      fillFromServer(rowFor(frame.order_id));
    }
  },
});
