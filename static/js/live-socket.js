// A WebSocket that keeps itself connected: exponential backoff with jitter, a ping heartbeat, and a
// state ("connecting" | "live" | "reconnecting" | "offline") for the connection indicator.
// The URL is asked for on every attempt, so a page can resume with its latest after_seq.

// Close codes after which retrying cannot help (see docs/protocol.md).
const FINAL_CLOSE_CODES = new Set([4001, 4003, 4004]);

export const BACKOFF = { baseMs: 500, maxMs: 15000 };
const PING_EVERY_MS = 20000;

export function wsUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

// Delay before attempt n (0-based): half of base·2^n (capped) fixed, the other half random, so a
// restarted server is not hit by every client at the same instant.
export function backoffDelay(attempt, { baseMs, maxMs } = BACKOFF) {
  const ceiling = Math.min(maxMs, baseMs * 2 ** attempt);
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

export class LiveSocket {
  constructor({ url, onFrame, onState, onOpen }) {
    this.url = url;
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.onOpen = onOpen || (() => {});
    this.attempt = 0;
    this.state = null;
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    this.stopped = false;
    window.addEventListener("online", () => {
      if (this.state !== "live") this.reconnectNow();
    });
    window.addEventListener("offline", () => this.setState("offline", "No network"));
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible" && this.state === "reconnecting") this.reconnectNow();
    });
  }

  start() {
    this.setState("connecting");
    this.connect();
    return this;
  }

  setState(state, detail = "") {
    this.state = state;
    this.onState(state, detail);
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = new WebSocket(wsUrl(this.url()));
    this.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.attempt = 0;
      this.setState("live");
      this.pingTimer = setInterval(() => this.send({ type: "ping" }), PING_EVERY_MS);
      this.onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (socket !== this.socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame && typeof frame.type === "string") this.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      clearInterval(this.pingTimer);
      this.socket = null;
      if (this.stopped) return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.stopped = true;
        this.setState("offline", event.code === 4001 ? "Please log in again" : "Not available");
        return;
      }
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    if (!navigator.onLine) {
      // The "online" event reconnects at once when the network is back.
      this.setState("offline", "No network");
      return;
    }
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // Drop the current socket (if any) and connect again now, e.g. to resume after a detected gap.
  reconnectNow() {
    if (this.stopped) return;
    const old = this.socket;
    this.socket = null;
    clearInterval(this.pingTimer);
    if (old) old.close(1000);
    this.setState("reconnecting");
    this.connect();
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }
}
