// The staff board: every order's status changes (from /ws/notifications/ as staff), highlighted as they
// arrive; presence frames fill "Watching"; the staff chat feed counts unread chats per order and shows the
// latest message. Rows, counts and the board's own status changes: board-rows.js, board-actions.js.
// After every (re)connect the board reconciles: it reads every order changed since its last snapshot (the
// page's render, then each reconcile) from GET /api/orders/?updated_since=, so changes made while it was
// disconnected are shown (and highlighted) too, whichever orders they touch, and re-reads its rows.

import { liveStream } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes } from "./format.js";
import { fetchAllOrders, oneAtATime, sinceBefore } from "./orders-api.js";
import {
  allRowIds, applySeen, applyChat, applyPresence, applyStatus, applyStuck, data, refreshRows, rowFor, scheduleCounts,
} from "./board-rows.js";
import { bindStatusForms } from "./board-actions.js";

localizeTimes();
bindStatusForms();
const indicator = bindIndicator(document.getElementById("connection"));

// An ISO time in microseconds since the epoch (Date keeps only milliseconds); null stays null.
function micros(iso) {
  if (!iso) return null;
  const fraction = (iso.match(/T[\d:]+\.(\d+)/) || [])[1] || "";
  return Math.floor(Date.parse(iso) / 1000) * 1e6 + Number(fraction.padEnd(6, "0").slice(0, 6));
}

// Whether an order ranks above `edge` in the board's order (selectors.BOARD_ORDER: most recent status
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
const shown = new Set(data.shownStatuses);

const reconcile = oneAtATime(async () => {
  const read = await fetchAllOrders({ updated_since: sinceBefore(asOf) });
  // Oldest change first, so the most recent ends up on top, as if the frames had arrived.
  for (const order of read.orders.filter((o) => o.status_changed_at).sort(byChangeTime)) {
    const status = { order_id: order.id, number: order.number, seq: order.seq, status: order.status,
                     at: order.status_changed_at };
    // Not on the board, yet among the most recently changed it shows: its change was missed (an order below
    // the first page's edge was merely on a later page, and still is).
    const add = !rowFor(order.id) && data.addsRows && shown.has(order.status)
      && (!data.windowEdge || ranksAbove(order.status_changed_at, order.id, data.windowEdge));
    applyStatus(status, { fill: false, add });
  }
  // Every row's customer, chat and watchers afresh: also what chat and presence frames missed meanwhile.
  await refreshRows(allRowIds());
  scheduleCounts();
  asOf = read.asOf;
});

// Rows keep their own seq (applyStatus drops anything not newer), and every open reconciles from the order list:
// so no order is subscribed for a replay (followUnseen: false), which for 50 rows would also be 50 frames on
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
    // A new ETA may be the at-risk check's: the row is read afresh, its at-risk flag with it.
    else if (frame.type === "order.updated" && "eta" in frame && rowFor(frame.order_id)) {
      refreshRows([String(frame.order_id)]).catch((error) => console.warn("Could not read the row.", error));
    }
  },
});
