// The order page: a live status timeline (resumable with after_seq, de-duplicated by seq), the order's
// chat, and for staff who else is watching. On a guest tracking link (data.tracking) it is read-only: the status
// socket authenticates by the link's token, and there is no chat.

import { liveStream } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { ago, localizeTimes, pageData, timeElement } from "./format.js";

const data = pageData();
const words = data.text || {};
localizeTimes();
const indicator = bindIndicator(document.getElementById("connection"));
const timeline = document.getElementById("timeline");
const currentStatus = document.getElementById("current-status");
const label = (status) => data.labels[status] || status;

// The highest seq shown; the server rendered the events up to data.seq.
let lastSeq = data.seq;

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
  const events = (await response.json()).events.filter((event) => event.seq <= lastSeq);
  const newest = Math.max(0, ...events.map((event) => event.seq));
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

// The stream applies each order.status once and in seq order (repeats dropped, a frame ahead of a gap held until
// it fills), and resumes from the last one applied after every reconnect.
const statusSocket = liveStream({
  path: `/ws/orders/${data.orderId}/`,
  auth: data.tracking ? { tracking: data.tracking } : undefined,
  positions: { [data.orderId]: data.seq },
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
