// A WebSocket that keeps itself connected: exponential backoff with jitter, a ping heartbeat with a pong
// deadline, and a state ("connecting" | "live" | "reconnecting" | "offline") for the connection indicator.
// The URL is asked for on every attempt, so a page can resume with its latest after_seq. `protocols` (optional)
// are the Sec-WebSocket-Protocol values offered, e.g. ["tracking", token] on a guest tracking page.
// A state's detail is a key of the page's text (orders/views.py page_text), so the indicator shows it translated.
// `onHeard` (optional) is called whenever the server is heard from (a pong or any frame): how fresh the page is.

// Close codes after which retrying cannot help (see docs/protocol.md).
const FINAL_CLOSE_CODES = new Set([4001, 4003, 4004]);

export const BACKOFF = { baseMs: 500, maxMs: 15000 };

// How often to ping, and how long to wait for the pong (or for a new socket to open) before treating the
// socket as dead: a frozen server, a laptop that slept, a proxy that dropped the connection silently all
// leave a socket that looks open. The page's data carries the server's settings (orders/views.py).
export function socketTiming() {
  const data = document.getElementById("page-data");
  const timing = (data && JSON.parse(data.textContent).socket) || {};
  return { pingMs: timing.pingMs || 20000, pongTimeoutMs: timing.pongTimeoutMs || 10000 };
}

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
  constructor({ url, protocols, onFrame, onState, onOpen, onHeard, timing }) {
    this.url = url;
    this.protocols = protocols;
    this.onFrame = onFrame;
    this.onState = onState || (() => {});
    this.onOpen = onOpen || (() => {});
    this.onHeard = onHeard || (() => {});
    this.timing = timing || socketTiming();
    this.attempt = 0;
    this.state = null;
    this.socket = null;
    this.retryTimer = null;
    this.pingTimer = null;
    this.deadlineTimer = null;
    this.stopped = false;
    window.addEventListener("online", () => {
      if (this.state !== "live") this.reconnectNow();
    });
    window.addEventListener("offline", () => this.setState("offline", "noNetwork"));
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
    const socket = this.protocols ? new WebSocket(wsUrl(this.url()), this.protocols)
      : new WebSocket(wsUrl(this.url()));
    this.socket = socket;
    // A handshake that never completes (a frozen server accepts TCP but never answers) counts as a failure.
    this.expectWithin(socket);
    socket.addEventListener("open", () => {
      if (socket !== this.socket) return;
      this.clearDeadline();
      this.setState("live");
      // A socket the server refuses opens too, then closes at once (4008: too many tabs): only a pong proves it
      // admitted, so the backoff resets on the first pong, asked for at once, never on open.
      this.ping(socket);
      this.pingTimer = setInterval(() => this.ping(socket), this.timing.pingMs);
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
      if (!frame || typeof frame.type !== "string") return;
      this.onHeard(new Date());
      if (frame.type === "pong") {
        this.clearDeadline();
        this.attempt = 0;
        return;
      }
      this.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== this.socket) return;
      this.clearTimers();
      this.socket = null;
      if (this.stopped) return;
      if (FINAL_CLOSE_CODES.has(event.code)) {
        this.stopped = true;
        this.setState("offline", this.protocols ? "linkInvalid"
          : event.code === 4001 ? "logInAgain" : "notAvailable");
        return;
      }
      this.scheduleRetry();
    });
  }

  scheduleRetry() {
    if (!navigator.onLine) {
      // The "online" event reconnects at once when the network is back.
      this.setState("offline", "noNetwork");
      return;
    }
    this.setState("reconnecting");
    const delay = backoffDelay(this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  ping(socket) {
    if (!this.send({ type: "ping" })) return;
    // One deadline at a time: a pong answers the oldest unanswered ping, and any pong proves the socket alive.
    if (!this.deadlineTimer) this.expectWithin(socket);
  }

  // Unless a pong (or, for a new socket, the open event) comes within the deadline, give the socket up.
  expectWithin(socket) {
    this.clearDeadline();
    this.deadlineTimer = setTimeout(() => {
      this.deadlineTimer = null;
      if (socket === this.socket) this.abandon();
    }, this.timing.pongTimeoutMs);
  }

  // The socket is dead but may never say so (no close event until TCP gives up): leave it, retry with backoff.
  abandon() {
    const old = this.socket;
    this.socket = null;
    this.clearTimers();
    if (old) old.close(1000);
    this.scheduleRetry();
  }

  clearDeadline() {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
  }

  clearTimers() {
    clearInterval(this.pingTimer);
    this.pingTimer = null;
    this.clearDeadline();
  }

  // Drop the current socket (if any) and connect again now, e.g. to resume after a detected gap.
  reconnectNow() {
    if (this.stopped) return;
    const old = this.socket;
    this.socket = null;
    this.clearTimers();
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
