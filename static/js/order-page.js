// The order page: a live status timeline (resumable with after_seq, de-duplicated by seq), the order's
// chat, and for staff who else is watching.

import { LiveSocket } from "./live-socket.js";
import { bindIndicator } from "./indicator.js";
import { localizeTimes, pageData, timeElement } from "./format.js";

const data = pageData();
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
      state === "done" ? " (done)" : state === "current" ? " (current)" : " (to come)";
    if (state === "current") step.setAttribute("aria-current", "step");
    else step.removeAttribute("aria-current");
  }
  document.getElementById("cancelled-note").hidden = status !== "cancelled";
}

function showStatus(frame) {
  const item = document.createElement("li");
  item.dataset.seq = frame.seq;
  item.dataset.status = frame.status;
  item.className = "fresh";
  const name = document.createElement("span");
  name.className = "timeline-status";
  name.textContent = label(frame.status);
  item.append(name, " ", timeElement(frame.at));
  timeline.prepend(item);
  currentStatus.textContent = label(frame.status);
  currentStatus.dataset.status = frame.status;
  renderProgress(frame.status);
}

const statusSocket = new LiveSocket({
  url: () => `/ws/orders/${data.orderId}/?after_seq=${lastSeq}`,
  onState: (state, detail) => indicator("status", state, detail),
  onFrame(frame) {
    if (frame.type === "presence") {
      showWatchers(frame.watchers);
      return;
    }
    if (frame.type !== "order.status" || frame.order_id !== data.orderId) return;
    if (frame.seq <= lastSeq) return; // already shown (at-least-once delivery)
    if (frame.seq > lastSeq + 1) {
      // A gap: resume from what we have rather than show events out of order.
      statusSocket.reconnectNow();
      return;
    }
    lastSeq = frame.seq;
    showStatus(frame);
  },
}).start();

function showWatchers(watchers) {
  const element = document.getElementById("watchers");
  if (!element) return;
  const others = watchers.map((w) => w.user).filter((user) => user !== data.user);
  element.textContent = others.length ? [...new Set(others)].join(", ") : "Nobody else.";
}

// --- Chat ---
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
  who.textContent = frame.sender === data.user ? "You" : frame.sender;
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

const chatSocket = new LiveSocket({
  url: () => `/ws/orders/${data.orderId}/chat/`,
  onState(state, detail) {
    indicator("chat", state, detail);
    setChatEnabled(state === "live");
  },
  onFrame(frame) {
    if (frame.type === "chat.message") showMessage(frame);
    else if (frame.type === "presence") showWatchers(frame.watchers);
    else if (frame.type === "error") {
      chatError.textContent = frame.detail;
      chatError.hidden = false;
    }
  },
}).start();

chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = chatText.value.trim();
  if (!text) return;
  chatError.hidden = true;
  if (chatSocket.send({ type: "message", text })) {
    chatText.value = "";
  } else {
    chatError.textContent = "Not connected; your message was not sent. Try again in a moment.";
    chatError.hidden = false;
  }
});

chatText.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) {
    event.preventDefault();
    chatForm.requestSubmit();
  }
});

renderProgress(data.status);
