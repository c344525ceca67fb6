// The staff board's rows: status, chat and watchers applied from frames, rows read afresh from the server
// (/staff/rows/, rendered by the same template as the page), the counts per status, and the notice of orders
// that changed but are not shown. templates/orders/board_row.html is the row's shape.

import { localizeTimes, pageData, timeElement } from "./format.js";

export const data = pageData();
export const body = document.getElementById("board-body");
const announcer = document.getElementById("board-announcer");
const HIGHLIGHT_MS = 15000;
const ROWS_PER_READ = 100; // orders.views.BOARD_ROWS_PER_READ
const COUNTS_AFTER_MS = 1000;
const shownStatuses = new Set(data.shownStatuses);
const renderedAt = Date.parse(data.asOf);

export const label = (status) => data.labels[status] || status;
export const say = (key, values = {}) =>
  data.text[key].replace(/\{(\w+)\}/g, (all, name) => (name in values ? values[name] : all));

export function rowFor(orderId) {
  return body.querySelector(`tr[data-order-id="${orderId}"]`);
}

const numberOf = (row) => row.querySelector("th a").textContent;

// A row for an order the page did not render, from the page's blank row; `fill` reads the rest of it
// (customer, chat, watchers) from the server.
function blankRow(orderId, number) {
  body.querySelector("tr.empty")?.remove();
  const row = document.getElementById("board-row").content.firstElementChild.cloneNode(true);
  row.dataset.orderId = orderId;
  const link = row.querySelector("th a");
  link.href = `/orders/${orderId}/`;
  link.textContent = number;
  const admin = row.querySelector(".admin-link");
  admin.href = `/admin/orders/order/${orderId}/change/`;
  admin.querySelector(".visually-hidden").textContent = ` ${number}`;
  const select = row.querySelector(".status-change select");
  if (select) select.setAttribute("aria-label", `${select.dataset.labelText} ${number}`);
  return row;
}

// Rows as the server renders them now, by order id (missing orders are left out).
async function readRows(orderIds) {
  const rows = new Map();
  for (let i = 0; i < orderIds.length; i += ROWS_PER_READ) {
    const query = new URLSearchParams(orderIds.slice(i, i + ROWS_PER_READ).map((id) => ["id", String(id)]));
    const response = await fetch(`/staff/rows/?${query}`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`GET /staff/rows/ answered ${response.status}`);
    const holder = document.createElement("template");
    holder.innerHTML = await response.text();
    localizeTimes(holder.content);
    for (const row of holder.content.querySelectorAll("tr[data-order-id]")) rows.set(row.dataset.orderId, row);
  }
  return rows;
}

const copy = (row, fresh, selector) => row.querySelector(selector).replaceWith(fresh.querySelector(selector));

// Takes from a freshly read row what is newer than the row shown: its status if its seq is higher, its chat if
// its chat mark (the id of the latest message it counted) is not lower, and its customer and watchers. A read
// that started before a chat frame arrived can thus never undo or double-count that frame.
function merge(row, fresh) {
  if (Number(fresh.dataset.seq) > Number(row.dataset.seq)) {
    // A change the read saw before its frame arrived: shown as the frame would show it.
    applyStatus({ order_id: row.dataset.orderId, number: numberOf(row), seq: Number(fresh.dataset.seq),
                  status: fresh.querySelector(".status-badge").dataset.status,
                  at: fresh.querySelector(".changed-at time")?.getAttribute("datetime") });
  }
  if (Number(fresh.dataset.chatId) >= Number(row.dataset.chatId)) {
    row.dataset.chatId = fresh.dataset.chatId;
    copy(row, fresh, ".unread");
  }
  row.dataset.customer = fresh.dataset.customer;
  copy(row, fresh, ".customer-cell");
  copy(row, fresh, ".watchers");
  row.dataset.atRisk = fresh.dataset.atRisk;
  copy(row, fresh, ".at-risk-badge");
  const freshSeen = fresh.querySelector(".seen");
  if (Number(freshSeen.dataset.seenSeq) >= Number(row.querySelector(".seen").dataset.seenSeq)) {
    applySeen({ order_id: row.dataset.orderId, seq: Number(freshSeen.dataset.seenSeq), at: freshSeen.dataset.seenAt },
              { force: true });
  }
  const ref = fresh.querySelector(".external-ref");
  if (ref && !row.querySelector(".external-ref")) row.querySelector("th").append(ref);
}

// Re-reads these rows from the server and merges them in; a failure leaves them as they are.
export async function refreshRows(orderIds) {
  if (!orderIds.length) return;
  const fresh = await readRows(orderIds);
  for (const [orderId, freshRow] of fresh) {
    const row = rowFor(orderId);
    if (row) merge(row, freshRow);
  }
}

function refreshQuietly(orderIds) {
  refreshRows(orderIds).catch((error) =>
    console.warn("Could not read the rows; the next chat message or reconnect tries again.", error));
}

export function allRowIds() {
  return [...body.querySelectorAll("tr[data-order-id]")].map((row) => row.dataset.orderId).filter(Boolean);
}

export function highlight(row, text) {
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

function setStatus(row, { seq, status, at }) {
  row.dataset.seq = seq;
  showSeen(row);
  const badge = row.querySelector(".status-badge");
  badge.dataset.status = status;
  badge.textContent = label(status);
  const select = row.querySelector(".status-change select");
  if (select && document.activeElement !== select) select.value = status;
  row.querySelector(".changed-at").replaceChildren(at ? timeElement(at) : "");
  // A row whose order the filter no longer shows stays until a reload, saying so.
  const leaving = row.querySelector(".left-filter") || document.createElement("span");
  leaving.className = "left-filter muted";
  leaving.textContent = shownStatuses.has(status) ? "" : ` ${say("leftFilter", { status: label(status) })}`;
  row.querySelector(".status-badge").after(leaving);
}

// Orders that changed while this page shows other ones (a later page, a search): counted, not added.
const missed = new Set();

function noteMissed(orderId) {
  missed.add(String(orderId));
  const notice = document.getElementById("board-missed");
  notice.querySelector(".missed-text").textContent = say("missed", { count: missed.size });
  notice.hidden = false;
}

// Whether a change to an order the page does not show adds its row: only on the first page of a view a status
// decides (no search, no support queue), for a status the view shows.
const addsRowFor = (status) => data.addsRows && shownStatuses.has(status);

// A status change (a frame, a reconcile's read, the board's own change). `fill`: read a new row's customer,
// chat and watchers (a reconcile reads every row at its end instead).
export function applyStatus({ order_id: orderId, number, seq, status, previous, at },
                            { fill = true, add = null } = {}) {
  scheduleCounts();
  let row = rowFor(orderId);
  if (row && seq <= Number(row.dataset.seq)) return; // already shown
  // The counts move at once for a row's next change; the re-read above corrects anything else.
  if (row && previous && seq === Number(row.dataset.seq) + 1) moveCount(previous, status);
  if (!row) {
    if (!(add ?? addsRowFor(status))) {
      // A change since the render that this view could show (a later page, a search: it may not match).
      if (shownStatuses.has(status) && Date.parse(at) > renderedAt) noteMissed(orderId);
      return;
    }
    row = blankRow(orderId, number);
    if (fill) refreshQuietly([orderId]);
  }
  setStatus(row, { seq, status, at });
  body.prepend(row); // most recently changed first
  highlight(row, say("justChanged"));
  announcer.textContent = say("isNow", { number: number || numberOf(row), status: label(status) });
}

// "Seen by customer": whether the customer's pages acknowledged the order's latest event (order.seen frames).
function showSeen(row) {
  const cell = row.querySelector(".seen");
  const seen = Number(cell.dataset.seenSeq);
  cell.replaceChildren(...(seen && cell.dataset.seenAt && seen >= Number(row.dataset.seq)
    ? [`${say("seen")} `, timeElement(cell.dataset.seenAt)] : [say("notYet")]));
}

export function applySeen({ order_id: orderId, seq, at }, { force = false } = {}) {
  const row = rowFor(orderId);
  const cell = row?.querySelector(".seen");
  if (!cell || (!force && seq <= Number(cell.dataset.seenSeq))) return;
  cell.dataset.seenSeq = seq;
  cell.dataset.seenAt = at || "";
  showSeen(row);
}

export function applyPresence({ order_id: orderId, watchers }) {
  const row = rowFor(orderId);
  if (!row) return;
  const names = [...new Set(watchers.map((w) => w.user))].filter((user) => user !== data.user);
  row.querySelector(".watchers").textContent = names.length ? names.join(", ") : "—";
}

const PREVIEW_CHARS = 80; // as the template's truncatechars

// Unread: the customer's messages since staff last wrote; any staff reply answers them all. A message at or
// below the row's chat mark is already counted (the row was read after it).
export function applyChat({ order_id: orderId, id, sender, text }) {
  const row = rowFor(orderId);
  if (!row || id <= Number(row.dataset.chatId)) return;
  const customer = row.dataset.customer;
  if (!customer) {
    // Whose message it is cannot be told yet: the server's count, read after it, includes it.
    refreshQuietly([orderId]);
    return;
  }
  row.dataset.chatId = id;
  const count = row.querySelector(".unread-count");
  const next = sender === customer ? Number(count.dataset.count) + 1 : 0;
  count.dataset.count = next;
  count.textContent = next;
  const preview = row.querySelector(".chat-preview");
  const shortened = text.length > PREVIEW_CHARS ? `${text.slice(0, PREVIEW_CHARS - 1)}…` : text;
  const who = document.createElement("span");
  who.className = "chat-sender";
  who.textContent = sender;
  const what = document.createElement("span");
  what.className = "chat-text";
  what.textContent = shortened;
  preview.replaceChildren(who, ": ", what);
  if (next > 0) highlight(row, say("newMessage"));
}

export function applyStuck({ orders }) {
  const alert = document.getElementById("stuck-alert");
  if (!orders.length) {
    alert.hidden = true;
    return;
  }
  alert.textContent = say("stuck", { orders: orders.map((o) => `${o.number} (${label(o.status)})`).join(", ") });
  alert.hidden = false;
  for (const row of body.querySelectorAll("tr.stuck")) row.classList.remove("stuck");
  for (const o of orders) rowFor(o.order_id)?.classList.add("stuck");
}

// The counts per status (and the total) of the board's filter, re-read from the server a moment after status
// changes (at most one read a second, however many changes): the server's count is the truth, whatever
// frames the board saw or missed.
let countsTimer = null;

export function scheduleCounts() {
  countsTimer ??= setTimeout(readCounts, COUNTS_AFTER_MS);
}

function moveCount(from, to) {
  for (const [status, by] of [[from, -1], [to, 1]]) {
    const shown = document.querySelector(`.status-count[data-status="${status}"]`);
    if (shown) shown.textContent = Math.max(0, Number(shown.textContent) + by);
  }
}

async function readCounts() {
  countsTimer = null;
  try {
    const response = await fetch(`/staff/counts/${window.location.search}`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`GET /staff/counts/ answered ${response.status}`);
    const { counts, total } = await response.json();
    for (const [status, count] of Object.entries(counts)) {
      const shown = document.querySelector(`.status-count[data-status="${status}"]`);
      if (shown) shown.textContent = count;
    }
    const totalShown = document.getElementById("board-total");
    if (totalShown) totalShown.textContent = total;
  } catch (error) {
    console.warn("Could not read the counts; the next change tries again.", error);
  }
}
