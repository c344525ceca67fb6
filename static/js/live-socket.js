// The pages' sockets: the published client's OrderStream (clients/js, served as /static/realtime-client/) does the
// socket, the resume rule, the backoff and the pong deadline; this adds only what a page needs on top of it:
// a state ("connecting" | "live" | "reconnecting" | "offline") for the connection indicator, whose detail is a key
// of the page's text (orders/views.py page_text) so the indicator shows it translated; the browser's
// online/offline and tab-visibility events; `onHeard`, called whenever the server is heard from (a pong or any
// frame): how fresh the page is.

import { backoffDelay as clientBackoffDelay, OrderStream } from "../realtime-client/index.js";

// The pages' backoff (docs/pages.md): a browser tab retries sooner than the client's Node-minded defaults.
export const BACKOFF = { baseMs: 500, maxMs: 15000 };

// How often to ping, and how long to wait for the pong (or for a new socket to open) before treating the
// socket as dead. The page's data carries the server's settings (orders/views.py).
export function socketTiming() {
  const data = document.getElementById("page-data");
  const timing = (data && JSON.parse(data.textContent).socket) || {};
  return { pingMs: timing.pingMs || 20000, pongTimeoutMs: timing.pongTimeoutMs || 10000 };
}

export function wsUrl(path) {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}${path}`;
}

// Delay before attempt n (0-based) with the pages' base and cap: the client's own equal-jitter backoff.
export function backoffDelay(attempt, { baseMs, maxMs } = BACKOFF) {
  return clientBackoffDelay(attempt, { base: baseMs, max: maxMs });
}

// Why a page's socket stopped for good, as a key of the page's text. A session cannot be renewed by a retry
// (4001: log in again); a tracking link that is refused is no longer valid, whatever the code.
function stopDetail(code, tracking) {
  if (tracking) return "linkInvalid";
  return code === 4001 ? "logInAgain" : "notAvailable";
}

/**
 * A started OrderStream on `path` (e.g. "/ws/notifications/") with the page's timing and backoff; other options
 * (auth, positions, followUnseen, onStatus, …) go to the OrderStream as they are. Listen with `.on(…)`.
 */
export function liveStream({ path, onState = () => {}, onHeard = () => {}, timing = socketTiming(), ...options }) {
  const stream = new OrderStream({
    url: wsUrl(path),
    pingInterval: timing.pingMs,
    pongTimeout: timing.pongTimeoutMs,
    connectTimeout: timing.pongTimeoutMs, // a handshake that never completes (a frozen server) is a failure too
    backoffBase: BACKOFF.baseMs,
    backoffMax: BACKOFF.maxMs,
    ...options,
  });
  let state = null;
  const show = (next, detail = "") => {
    state = next;
    onState(next, detail);
  };
  stream.on("frame", () => onHeard(new Date()));
  stream.on("open", () => show("live"));
  stream.on("close", ({ retry }) => {
    // Offline, the stream's retries fail until the "online" event below reconnects at once.
    if (retry) show(navigator.onLine ? "reconnecting" : "offline", navigator.onLine ? "" : "noNetwork");
  });
  stream.on("stop", ({ code }) => {
    if (code !== 1000) show("offline", stopDetail(code, Boolean(options.auth?.tracking)));
  });
  window.addEventListener("online", () => {
    if (state !== "live") stream.reconnect();
  });
  window.addEventListener("offline", () => show("offline", "noNetwork"));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && state === "reconnecting") stream.reconnect();
  });
  show("connecting");
  return stream.start();
}
