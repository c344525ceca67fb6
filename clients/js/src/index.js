// The order-tracking socket client: one OrderStream per socket (an order, the user's notifications, or a chat
// room). It implements docs/protocol.md's "Resuming after a disconnect" rule set: the last applied seq per order,
// after_seq / subscribe on reconnect, repeats dropped, frames ahead held until the gap fills, order.reset,
// backoff with jitter that only a pong resets, no retry on 4003/4004, a fresh token after 4001, a pong deadline.
// No dependencies: the global WebSocket (browsers, Node 22+) or the `WebSocket` option (the `ws` package).

const ORDER_PATH = /\/ws\/orders\/(\d+)\/$/;
const CHAT_PATH = /\/ws\/orders\/\d+\/chat\/$/;
const NOTIFICATIONS_PATH = /\/ws\/notifications\/$/;

// Close codes after which reconnecting cannot help (docs/protocol.md, "Close codes"), except 4003 "access changed":
// the user's access changed while the socket was open, and a new socket gets what the user may see now.
const FINAL_CODES = new Set([4003, 4004]);
const ACCESS_CHANGED = "access changed";
const NOT_AUTHENTICATED = 4001;
// Frames held per order while waiting for the one that fills a gap; past this the replay resends them anyway.
const MAX_HELD = 1000;

export const DEFAULTS = Object.freeze({
  pingInterval: 20_000, // WS_PING_INTERVAL_SECONDS
  pongTimeout: 10_000, // WS_PONG_TIMEOUT_SECONDS
  connectTimeout: 10_000,
  backoffBase: 250,
  backoffMax: 30_000,
  // Subscribes sent when a notification socket opens: `subscribeBatch` at once, as many again every
  // `subscribePaceMs`. The server closes a socket with 4008 past 10 frames/s in bursts of 20 (docs/protocol.md,
  // "Limits"), so a client that follows many orders must not send one subscribe per order all at once.
  subscribeBatch: 8,
  subscribePaceMs: 1_000,
});

/** A JWT's `exp` (epoch seconds), read without verifying it (the server does); undefined if it has none. */
export function tokenExpiry(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const exp = JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, "="))).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** The socket's kind from its path: "order", "notifications" or "chat". */
export function socketKind(url) {
  const path = new URL(url).pathname;
  if (CHAT_PATH.test(path)) return "chat";
  if (ORDER_PATH.test(path)) return "order";
  if (NOTIFICATIONS_PATH.test(path)) return "notifications";
  throw new TypeError(`not an order-tracking socket path: ${path}`);
}

/**
 * The delay before reconnect attempt `attempt` (0 for the first): "equal jitter", half fixed and half random,
 * so the delay never shrinks from one attempt to the next while clients still spread out.
 */
export function backoffDelay(attempt, { base = DEFAULTS.backoffBase, max = DEFAULTS.backoffMax, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** Math.min(attempt, 30));
  return ceiling / 2 + random() * (ceiling / 2);
}

export class OrderStream {
  constructor(options) {
    const { url, auth = { session: true }, positions = {}, getToken, WebSocket: Socket = globalThis.WebSocket } =
      options ?? {};
    if (!url) throw new TypeError("url is required");
    if (typeof Socket !== "function") {
      throw new TypeError("no WebSocket: pass the `WebSocket` option (in Node 20: `import WebSocket from \"ws\"`)");
    }
    if (options.inBandRefresh && (typeof getToken !== "function" || !auth.bearer)) {
      throw new TypeError("inBandRefresh needs a bearer token and getToken");
    }
    // In-band refresh: `refreshBefore` ms before the access token expires, send {"type": "auth"} with getToken's
    // fresh one, so the socket stays open instead of closing with 4001 and reconnecting every token lifetime.
    this.inBandRefresh = Boolean(options.inBandRefresh);
    this.refreshBefore = options.refreshBefore ?? 60_000;
    this.pendingToken = null;
    // followUnseen false: an order with no position is not subscribed from 0 (rule 8) but passed on as a `frame`
    // only, for a client that shows each order's latest status and re-reads the list after every open (rule 7).
    this.followUnseen = options.followUnseen ?? true;
    this.url = url;
    this.kind = socketKind(url);
    this.auth = { ...auth };
    this.getToken = getToken;
    this.Socket = Socket;
    this.timing = {
      pingInterval: options.pingInterval ?? DEFAULTS.pingInterval,
      pongTimeout: options.pongTimeout ?? DEFAULTS.pongTimeout,
      connectTimeout: options.connectTimeout ?? DEFAULTS.connectTimeout,
      subscribeBatch: options.subscribeBatch ?? DEFAULTS.subscribeBatch,
      subscribePaceMs: options.subscribePaceMs ?? DEFAULTS.subscribePaceMs,
    };
    this.backoff = { base: options.backoffBase ?? DEFAULTS.backoffBase, max: options.backoffMax ?? DEFAULTS.backoffMax,
                     random: options.random ?? Math.random };
    /** @type {Map<number, number>} order id → last applied seq */
    this.last = new Map(Object.entries(positions).map(([id, seq]) => [Number(id), seq]));
    if (this.kind === "order") {
      const orderId = Number(new URL(url).pathname.match(ORDER_PATH)[1]);
      // An order never seen starts from its whole history (rule 8).
      if (!this.last.has(orderId)) this.last.set(orderId, 0);
      this.orderId = orderId;
    }
    this.held = new Map(); // order id → Map(seq → frame), frames ahead of last + 1
    this.listeners = new Map();
    this.attempt = 0; // reconnects since the last pong: the backoff exponent
    this.connections = 0;
    this.socket = null;
    this.timers = new Set();
    this.state = "idle"; // idle → connecting → open → waiting → … → stopped
    for (const [option, event] of [["onFrame", "frame"], ["onStatus", "status"], ["onReset", "reset"],
                                   ["onOpen", "open"], ["onClose", "close"], ["onStop", "stop"]]) {
      if (typeof options[option] === "function") this.on(event, options[option]);
    }
  }

  /** Listen to "frame" (every frame), "status" (an applied order.status), "reset", "chat", "presence",
   * "open", "close", "reconnect", "stop"; returns a function that removes the listener. */
  on(event, listener) {
    if (!this.listeners.has(event)) this.listeners.set(event, new Set());
    this.listeners.get(event).add(listener);
    return () => this.listeners.get(event)?.delete(listener);
  }

  emit(event, detail) {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(detail);
      } catch (error) {
        // One listener's bug must not break delivery to the others, nor the resume bookkeeping.
        queueMicrotask(() => { throw error; });
      }
    }
  }

  /** The last seq applied for an order (undefined: never seen). */
  position(orderId) {
    return this.last.get(orderId);
  }

  start() {
    if (this.state !== "idle") return this;
    this.connect();
    return this;
  }

  /** Close for good: no reconnect. */
  stop() {
    if (this.state === "stopped") return;
    this.finish({ code: 1000, reason: "stopped by the client" });
  }

  /**
   * Drop the current socket, if any, and connect at once instead of after the backoff's wait: the network is back,
   * the app came to the foreground. The backoff is not reset (only a pong does that); nothing once stopped.
   */
  reconnect() {
    if (this.state === "idle" || this.state === "stopped") return;
    const socket = this.socket;
    this.socket = null;
    this.clearTimers(); // the pending backoff wait, the ping and the pong deadline of the dropped socket
    if (socket) {
      try {
        socket.close(1000);
      } catch {
        // a socket still connecting may throw; it is dropped either way
      }
      this.emit("close", { code: 1000, reason: "reconnecting", retry: true, delay: 0 });
    }
    this.connect();
  }

  /** Follow one more order on /ws/notifications/ from `afterSeq` (what the page shows; 0 for its whole history). */
  follow(orderId, afterSeq = 0) {
    if (this.kind !== "notifications") throw new TypeError("follow() is for /ws/notifications/");
    this.last.set(orderId, afterSeq);
    this.held.delete(orderId);
    this.send({ type: "subscribe", order_id: orderId, after_seq: afterSeq });
  }

  /**
   * Resubscribe every known order on a notification socket that just opened, paced under the server's frame limit.
   * Each subscribe carries the order's position when it is sent, not when the socket opened: frames that arrived
   * for it meanwhile were applied or held, and the replay fills in from there.
   */
  subscribeAll(socket) {
    const pending = [...this.last.keys()];
    const sendBatch = () => {
      if (this.socket !== socket || this.state !== "open") return;
      for (const orderId of pending.splice(0, this.timing.subscribeBatch)) {
        socket.send(JSON.stringify({ type: "subscribe", order_id: orderId, after_seq: this.last.get(orderId) }));
      }
      if (pending.length) this.later(this.timing.subscribePaceMs, sendBatch);
    };
    sendBatch();
  }

  /** Send a frame on the open socket; false when there is none open (the frame is not queued). */
  send(frame) {
    if (this.state !== "open") return false;
    this.socket.send(JSON.stringify(frame));
    return true;
  }

  connect() {
    this.state = "connecting";
    this.connections += 1;
    const socket = new this.Socket(this.socketUrl(), this.protocols());
    this.socket = socket;
    let gotPong = false;
    let pongDeadline = null;
    const mine = () => this.socket === socket;
    const opening = this.later(this.timing.connectTimeout, () => mine() && this.abandon(socket, "connect timeout"));

    const ping = () => {
      if (!mine() || this.state !== "open") return;
      socket.send(JSON.stringify({ type: "ping" }));
      if (pongDeadline === null) {
        pongDeadline = this.later(this.timing.pongTimeout, () => mine() && this.abandon(socket, "pong timeout"));
      }
    };

    socket.addEventListener("open", () => {
      if (!mine()) return;
      this.clear(opening);
      this.state = "open";
      this.emit("open", { connection: this.connections, reconnect: this.connections > 1 });
      if (this.kind === "notifications") this.subscribeAll(socket);
      ping(); // at once: the first pong is what proves the server took us (a refused socket opens, then closes)
      this.every(this.timing.pingInterval, ping, socket);
      if (this.inBandRefresh) this.scheduleRefresh(socket, tokenExpiry(this.auth.bearer));
    });

    socket.addEventListener("message", (event) => {
      if (!mine()) return;
      let frame;
      try {
        frame = JSON.parse(typeof event.data === "string" ? event.data : String(event.data));
      } catch {
        return; // the server sends JSON text only; anything else is not ours to act on
      }
      if (frame === null || typeof frame !== "object" || typeof frame.type !== "string") return;
      if (frame.type === "pong") {
        this.clear(pongDeadline);
        pongDeadline = null;
        if (!gotPong) {
          gotPong = true;
          this.attempt = 0; // the server has taken this socket: only now does the backoff start over
        }
      }
      this.emit("frame", frame);
      this.receive(frame);
    });

    socket.addEventListener("close", (event) => {
      if (!mine()) return;
      this.closed(event.code, event.reason ?? "");
    });
    // A failed handshake (403/404/429) is an error then a close 1006: the close event handles it.
    socket.addEventListener("error", () => {});
  }

  socketUrl() {
    if (this.kind !== "order") return this.url;
    const url = new URL(this.url);
    url.searchParams.set("after_seq", String(this.last.get(this.orderId)));
    return url.toString();
  }

  protocols() {
    if (this.auth.bearer) return ["bearer", this.auth.bearer];
    if (this.auth.tracking) return ["tracking", this.auth.tracking];
    return []; // the session cookie: the browser sends it with the handshake
  }

  receive(frame) {
    if (frame.type === "order.status") this.status(frame);
    else if (frame.type === "order.reset") this.reset(frame);
    else if (frame.type === "chat.message") this.emit("chat", frame);
    else if (frame.type === "presence") this.emit("presence", frame);
    else if (frame.type === "order.stuck") this.emit("stuck", frame);
    else if (frame.type === "error") this.emit("error", frame);
    else if (frame.type === "auth.ok") this.authOk(frame);
  }

  /** Ask getToken for a fresh token `refreshBefore` ms before `exp`, and send it in band. */
  scheduleRefresh(socket, exp) {
    if (exp === undefined) return;
    this.later(Math.max(0, exp * 1000 - Date.now() - this.refreshBefore), async () => {
      const current = () => this.socket === socket && this.state === "open";
      if (!current()) return;
      const token = await this.freshToken();
      // No token: the socket closes 4001 `token expired` at expiry, and the 4001 path asks getToken again.
      if (!token || !current()) return;
      this.pendingToken = token;
      socket.send(JSON.stringify({ type: "auth", token }));
    });
  }

  authOk(frame) {
    // The server took the token: reconnects use it too, and the next refresh is due before its expiry.
    if (this.pendingToken) this.auth.bearer = this.pendingToken;
    this.pendingToken = null;
    this.emit("auth", frame);
    this.scheduleRefresh(this.socket, frame.exp);
  }

  status(frame) {
    const orderId = frame.order_id;
    let have = this.last.get(orderId);
    if (have === undefined) {
      // An order this client has never seen (created while it was away): its whole history first (rule 8). The
      // frame is kept too, not dropped: the stream does not resend what it already sent this connection in one
      // unbroken run (realtime/streams.py resume_from), so the replay may start after it.
      if (this.kind !== "notifications" || !this.followUnseen) return;
      this.follow(orderId, 0);
      have = 0;
    }
    if (frame.seq <= have) return; // a repeat: delivery is at-least-once
    if (frame.seq > have + 1) {
      // Ahead of a replay on its way: hold it, the frames before it fill the gap (or the replay resends it).
      const held = this.held.get(orderId) ?? new Map();
      if (held.size < MAX_HELD) held.set(frame.seq, frame);
      this.held.set(orderId, held);
      return;
    }
    this.apply(frame);
    const held = this.held.get(orderId);
    while (held?.has(this.last.get(orderId) + 1)) {
      const next = held.get(this.last.get(orderId) + 1);
      held.delete(next.seq);
      this.apply(next);
    }
    for (const seq of held?.keys() ?? []) if (seq <= this.last.get(orderId)) held.delete(seq);
  }

  apply(frame) {
    this.last.set(frame.order_id, frame.seq);
    this.emit("status", frame);
  }

  reset(frame) {
    // The client was ahead of the log: what it showed after frame.seq is not in it. Frames continue from seq + 1,
    // and anything held belongs to the old log.
    this.last.set(frame.order_id, frame.seq);
    this.held.delete(frame.order_id);
    this.emit("reset", frame);
  }

  /** The socket is dead though not closed (no pong, or no open): drop it and reconnect. */
  abandon(socket, reason) {
    this.socket = null;
    this.clearTimers();
    try {
      if (typeof socket.terminate === "function") socket.terminate();
      else socket.close(4000, reason);
    } catch {
      // closing a socket that never opened may throw; it is dropped either way
    }
    this.closed(1006, reason);
  }

  async closed(code, reason) {
    this.socket = null;
    this.clearTimers();
    if (this.state === "stopped") return;
    this.state = "waiting";
    if (FINAL_CODES.has(code) && !(code === 4003 && reason === ACCESS_CHANGED)) {
      this.emit("close", { code, reason, retry: false });
      this.finish({ code, reason });
      return;
    }
    if (code === NOT_AUTHENTICATED) {
      const token = this.getToken && !this.auth.session ? await this.freshToken() : null;
      if (this.state !== "waiting") return; // stopped, or reconnect() went ahead while getToken ran
      if (!token) {
        this.emit("close", { code, reason, retry: false });
        this.finish({ code, reason });
        return;
      }
      if (this.auth.tracking) this.auth.tracking = token;
      else this.auth.bearer = token;
    }
    const delay = backoffDelay(this.attempt, this.backoff);
    this.attempt += 1;
    this.emit("close", { code, reason, retry: true, delay });
    this.emit("reconnect", { code, reason, delay, attempt: this.attempt });
    this.later(delay, () => {
      if (this.state === "waiting") this.connect();
    });
  }

  async freshToken() {
    try {
      const token = await this.getToken();
      return typeof token === "string" && token ? token : null;
    } catch {
      return null;
    }
  }

  finish(detail) {
    const socket = this.socket;
    this.socket = null;
    this.state = "stopped";
    this.clearTimers();
    if (socket) {
      try {
        socket.close(1000);
      } catch {
        // already closing
      }
    }
    this.emit("stop", detail);
  }

  later(ms, fn) {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
    return timer;
  }

  every(ms, fn, socket) {
    const timer = setInterval(() => (this.socket === socket ? fn() : this.clear(timer)), ms);
    this.timers.add(timer);
    return timer;
  }

  clear(timer) {
    if (timer === null || timer === undefined) return;
    clearTimeout(timer);
    clearInterval(timer);
    this.timers.delete(timer);
  }

  clearTimers() {
    for (const timer of this.timers) {
      clearTimeout(timer);
      clearInterval(timer);
    }
    this.timers.clear();
  }
}
