// The order page: a live status timeline and delivery facts (carrier, tracking, promised date, ETA: order.status
// and order.updated frames on one seq stream, resumable with after_seq, de-duplicated by seq), prices in the
// order's currency and the page's language, the order's chat, and for staff who else is watching. On a guest
// tracking link (data.tracking) it is read-only: the status socket authenticates by the link's token, and there
// is no chat.

import { liveStream } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { ago, localizeTimes, pageData, pageLanguage, timeElement } from "./format.js";

const data = pageData();
const words = data.text || {};
localizeTimes();
const indicator = bindIndicator(document.getElementById("connection"));
const timeline = document.getElementById("timeline");
const currentStatus = document.getElementById("current-status");
const label = (status) => data.labels[status] || status;

// The highest seq shown; the server rendered the events up to data.seq.
let lastSeq = data.seq;

// Money in the order's currency, written the page language's way (1.234,50 € / €1,234.50).
function formatMoney(amount) {
  try {
    return new Intl.NumberFormat(pageLanguage(), { style: "currency", currency: data.currency })
      .format(Number(amount));
  } catch {
    return `${amount} ${data.currency}`; // a currency code the browser does not know
  }
}
for (const cell of document.querySelectorAll("[data-money]")) cell.textContent = formatMoney(cell.dataset.money);

// Carrier, tracking number (linked to the carrier's page where known), promised date and ETA, as last applied.
const shipment = { ...data.shipment };

function showFact(id, content, changed) {
  const element = document.getElementById(id);
  element.replaceChildren(content);
  if (changed) {
    element.classList.remove("fresh");
    void element.offsetWidth; // restart the highlight
    element.classList.add("fresh");
  }
}

function trackingContent() {
  if (!shipment.tracking_number) return words.notKnown;
  if (!shipment.carrier_tracking_url) return shipment.tracking_number;
  const link = document.createElement("a");
  link.href = shipment.carrier_tracking_url;
  link.rel = "noopener noreferrer";
  link.target = "_blank";
  link.textContent = shipment.tracking_number;
  return link;
}

function showShipment(changed = {}) {
  showFact("carrier", shipment.carrier || words.notKnown, "carrier" in changed);
  showFact("tracking-number", trackingContent(), "tracking_number" in changed || "carrier_tracking_url" in changed);
  showFact("promised-at", shipment.promised_at ? timeElement(shipment.promised_at) : words.notKnown,
           "promised_at" in changed);
  showFact("eta", shipment.eta ? timeElement(shipment.eta) : words.notKnown, "eta" in changed);
  showLate();
}

// "Running late" while the order is on its way with an ETA past its promise (models.Order.later_than_promised).
function showLate() {
  const open = !["delivered", "cancelled"].includes(currentStatus.dataset.status);
  const late = shipment.eta && shipment.promised_at && Date.parse(shipment.eta) > Date.parse(shipment.promised_at);
  document.getElementById("late-notice").hidden = !(open && late);
}

const SHIPMENT_FIELDS = ["carrier", "tracking_number", "carrier_tracking_url", "promised_at", "eta"];

// An order.updated frame carries only what changed.
function applyUpdate(frame) {
  const changed = {};
  for (const field of SHIPMENT_FIELDS) {
    if (field in frame) shipment[field] = changed[field] = frame[field];
  }
  showShipment(changed);
}

function renderProgress(status) {
  const reached = data.progress.indexOf(status);
  for (const step of document.querySelectorAll("#progress li")) {
    const index = data.progress.indexOf(step.dataset.step);
    const state = status === "cancelled" ? "" : index < reached ? "done" : index === reached ? "current" : "";
    step.dataset.state = state;
    step.querySelector(".step-state").textContent =
      ` ${state === "done" ? words.stepDone : state === "current" ? words.stepCurrent : words.stepToCome}`;
    if (state === "current") step.setAttribute("aria-current", "step");
    else step.removeAttribute("aria-current");
  }
  document.getElementById("cancelled-note").hidden = status !== "cancelled";
}

function timelineItem({ seq, status, at }) {
  const item = document.createElement("li");
  item.dataset.seq = seq;
  item.dataset.status = status;
  const name = document.createElement("span");
  name.className = "timeline-status";
  name.textContent = label(status);
  item.append(name, " ", timeElement(at));
  return item;
}

function showCurrent(status) {
  currentStatus.textContent = label(status);
  currentStatus.dataset.status = status;
  renderProgress(status);
  showLate();
}

function showStatus(frame) {
  const item = timelineItem(frame);
  item.className = "fresh";
  timeline.prepend(item);
  showCurrent(frame.status);
}

// On order.reset the page was ahead of the order's log (a database restored from a backup): what it showed
// after `seq` never happened as far as the server knows. Continue from `seq` and re-read the order's history.
async function resetTo(seq) {
  lastSeq = seq;
  if (data.tracking) {
    // A guest cannot read the API: the page itself is the order as it is now.
    window.location.reload();
    return;
  }
  for (const item of [...timeline.children]) if (Number(item.dataset.seq) > seq) item.remove();
  showNewest();
  const response = await fetch(`/api/orders/${data.orderId}/`, { credentials: "same-origin" });
  if (!response.ok) return;
  const order = await response.json();
  const logged = order.events.filter((event) => event.seq <= lastSeq);
  const newest = Math.max(0, ...logged.map((event) => event.seq));
  // Status changes make the timeline; the delivery facts are the order's as it is now.
  const events = logged.filter((event) => event.kind !== "updated");
  for (const field of SHIPMENT_FIELDS) shipment[field] = order[field];
  showShipment();
  // Frames applied while the request was out, and not in its answer, stay on top.
  const arrived = [...timeline.children].filter((item) => Number(item.dataset.seq) > newest);
  timeline.replaceChildren(...arrived, ...events.reverse().map(timelineItem));
  showNewest();
}

function showNewest() {
  if (timeline.firstElementChild) showCurrent(timeline.firstElementChild.dataset.status);
}

// How fresh the page is: "Up to date · checked 12 s ago" from the status socket's last pong or frame; while
// that socket is not live, "Not live · last checked …" (or nothing before it was ever heard).
const freshness = document.getElementById("freshness");
let statusLive = false;
let lastHeard = null;

function showFreshness() {
  if (!lastHeard) {
    freshness.textContent = "";
    return;
  }
  const seconds = Math.max(0, Math.round((Date.now() - lastHeard) / 1000));
  freshness.textContent = (statusLive ? words.fresh : words.stale).replace("{ago}", ago(seconds));
}
setInterval(showFreshness, 1000);

// The stream applies each order.status and order.updated once and in seq order (repeats dropped, a frame ahead of
// a gap held until it fills), and resumes from the last one applied after every reconnect.
const statusSocket = liveStream({
  path: `/ws/orders/${data.orderId}/`,
  auth: data.tracking ? { tracking: data.tracking } : undefined,
  positions: { [data.orderId]: data.seq },
  // Delivery receipts (docs/protocol.md): what the page shows, once rendered and while the tab is visible.
  ackSeen: true,
  onState(state, detail) {
    statusLive = state === "live";
    indicator("status", state, detail);
    showFreshness();
  },
  onHeard(at) {
    lastHeard = at;
    showFreshness();
  },
  onStatus(frame) {
    lastSeq = frame.seq;
    showStatus(frame);
  },
  // order.updated shares the order's seq stream: the stream applies it in the same order, once.
  onUpdated(frame) {
    lastSeq = frame.seq;
    applyUpdate(frame);
  },
  onReset: (frame) => resetTo(frame.seq),
});
statusSocket.on("presence", (frame) => showWatchers(frame.watchers));

function showWatchers(watchers) {
  const element = document.getElementById("watchers");
  if (!element) return;
  const others = watchers.map((w) => w.user).filter((user) => user !== data.user);
  element.textContent = others.length ? [...new Set(others)].join(", ") : words.nobodyElse;
}

// --- Chat (not on a guest tracking page) ---
function startChat() {
  const chatLog = document.getElementById("chat-log");
  const chatForm = document.getElementById("chat-form");
  const chatText = document.getElementById("chat-text");
  const chatSend = document.getElementById("chat-send");
  const chatError = document.getElementById("chat-error");
  // The server sends the last 50 messages on every join: show each id once.
  const seenMessages = new Set();

  function showMessage(frame) {
    if (seenMessages.has(frame.id)) return;
    seenMessages.add(frame.id);
    document.getElementById("chat-empty").hidden = true;
    const item = document.createElement("li");
    item.className = frame.sender === data.user ? "mine" : "theirs";
    const meta = document.createElement("p");
    meta.className = "chat-meta";
    const who = document.createElement("strong");
    who.textContent = frame.sender === data.user ? words.you : frame.sender;
    meta.append(who, " · ", timeElement(frame.at));
    const text = document.createElement("p");
    text.className = "chat-text";
    text.textContent = frame.text;
    item.append(meta, text);
    chatLog.append(item);
    chatLog.scrollTop = chatLog.scrollHeight;
  }

  function setChatEnabled(enabled) {
    chatSend.disabled = !enabled;
  }

  const chatSocket = liveStream({
    path: `/ws/orders/${data.orderId}/chat/`,
    onState(state, detail) {
      indicator("chat", state, detail);
      setChatEnabled(state === "live");
    },
  });
  chatSocket.on("chat", showMessage);
  chatSocket.on("presence", (frame) => showWatchers(frame.watchers));
  chatSocket.on("error", (frame) => {
    chatError.textContent = frame.detail;
    chatError.hidden = false;
  });

  chatForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = chatText.value.trim();
    if (!text) return;
    chatError.hidden = true;
    if (chatSocket.send({ type: "message", text })) {
      chatText.value = "";
    } else {
      chatError.textContent = words.notSent;
      chatError.hidden = false;
    }
  });

  chatText.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      chatForm.requestSubmit();
    }
  });
}

if (!data.tracking) startChat();

renderProgress(data.status);
