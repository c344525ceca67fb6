// The client against a real server: run by tests/clients/test_js_client.py, which starts uvicorn and a celery
// worker and serves CONTROL_URL (customers, tokens, status changes, killing and freezing the server).
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";
import WebSocket from "ws";

import { backoffDelay, OrderStream } from "../src/index.js";

const WS_URL = process.env.WS_URL;
const CONTROL_URL = process.env.CONTROL_URL;
if (!WS_URL || !CONTROL_URL) throw new Error("run through tests/clients/test_js_client.py (WS_URL, CONTROL_URL)");

const FAST = { WebSocket, backoffBase: 100, backoffMax: 1000, pingInterval: 1000, pongTimeout: 2000 };
const streams = [];

async function control(action, body = {}) {
  const response = await fetch(`${CONTROL_URL}/${action}`, { method: "POST", body: JSON.stringify(body) });
  const answer = await response.json();
  if (!response.ok) throw new Error(`${action}: ${answer.detail}`);
  return answer;
}

async function until(condition, what, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A started stream that records what it applied per order, its resets, closes and reconnect delays. */
function watch(options) {
  const seen = { applied: new Map(), resets: [], closes: [], delays: [], stops: [], pongs: 0, frames: [] };
  const stream = new OrderStream({
    ...FAST,
    ...options,
    onStatus: (frame) => {
      if (!seen.applied.has(frame.order_id)) seen.applied.set(frame.order_id, []);
      seen.applied.get(frame.order_id).push(frame.seq);
    },
    onReset: (frame) => seen.resets.push(frame),
    onClose: (detail) => seen.closes.push(detail),
    onStop: (detail) => seen.stops.push(detail),
  });
  stream.on("reconnect", ({ delay }) => seen.delays.push(delay));
  stream.on("frame", (frame) => { if (frame.type === "pong") seen.pongs += 1; else seen.frames.push(frame); });
  streams.push(stream);
  stream.start();
  return { stream, seen };
}

const applied = (seen, orderId) => seen.applied.get(orderId) ?? [];
const orderUrl = (orderId, base = WS_URL) => `${base}/ws/orders/${orderId}/`;
const notificationsUrl = (base = WS_URL) => `${base}/ws/notifications/`;

afterEach(() => {
  while (streams.length) streams.pop().stop();
});

test("live frames arrive once and in seq order on the order socket and the notification stream", async () => {
  const customer = await control("customer");
  const auth = { bearer: customer.token };
  const order = watch({ url: orderUrl(customer.order_id), auth, positions: { [customer.order_id]: 1 } });
  const notifications = watch({ url: notificationsUrl(), auth, positions: { [customer.order_id]: 1 } });
  await until(() => order.seen.pongs && notifications.seen.pongs, "both sockets to answer a ping");
  for (const to of ["confirmed", "preparing", "shipped"]) await control("change", { order_id: customer.order_id, to });
  await until(() => applied(order.seen, customer.order_id).length >= 3
    && applied(notifications.seen, customer.order_id).length >= 3, "three changes on both sockets");
  await sleep(300); // time for a repeat to show, were one applied
  assert.deepEqual(applied(order.seen, customer.order_id), [2, 3, 4]);
  assert.deepEqual(applied(notifications.seen, customer.order_id), [2, 3, 4]);
  assert.equal(order.stream.position(customer.order_id), 4);
});

/** The order's seen seq on the server once it is `seq`, or what it is after `timeout`. */
async function storedReceipt(orderId, seq, timeout = 10_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const stored = (await control("seen", { order_id: orderId })).seq;
    if (stored === seq || Date.now() > deadline) return stored;
    await sleep(50);
  }
}

test("with ackSeen the server records what the customer's page was rendered with and each change it applied", async () => {
  const customer = await control("customer");
  const order = watch({ url: orderUrl(customer.order_id), auth: { bearer: customer.token }, ackSeen: true,
                        positions: { [customer.order_id]: 1 } });
  await until(() => order.seen.pongs, "the socket to answer a ping");
  assert.equal(await storedReceipt(customer.order_id, 1), 1);
  for (const to of ["confirmed", "preparing"]) await control("change", { order_id: customer.order_id, to });
  await until(() => applied(order.seen, customer.order_id).length === 2, "two changes");
  assert.equal(await storedReceipt(customer.order_id, 3), 3);
});

test("a browser's session cookie authenticates without a subprotocol", async () => {
  const customer = await control("customer");
  const { cookie, origin } = await control("session", { user: customer.user });
  const offered = [];
  // What a browser does: the cookie and the page's Origin go with the handshake; the client offers no protocol.
  class Browser extends WebSocket {
    constructor(url, protocols) {
      offered.push(protocols);
      super(url, protocols, { headers: { Cookie: cookie, Origin: origin } });
    }
  }
  const { seen } = watch({ url: orderUrl(customer.order_id), WebSocket: Browser, positions: { [customer.order_id]: 1 } });
  await control("change", { order_id: customer.order_id, to: "confirmed" });
  await until(() => applied(seen, customer.order_id).length, "the change");
  assert.deepEqual(applied(seen, customer.order_id), [2]);
  assert.deepEqual(offered, [[]]);
});

test("an order socket never seen before starts from the order's whole history", async () => {
  const customer = await control("customer");
  await control("change", { order_id: customer.order_id, to: "confirmed" });
  const { seen } = watch({ url: orderUrl(customer.order_id), auth: { bearer: customer.token } });
  await until(() => applied(seen, customer.order_id).length >= 2, "the replay");
  assert.deepEqual(applied(seen, customer.order_id), [1, 2]);
});

test("an order the stream has not seen is subscribed from after_seq 0, its history complete", async () => {
  const customer = await control("customer");
  const { stream, seen } = watch({ url: notificationsUrl(), auth: { bearer: customer.token },
                                   positions: { [customer.order_id]: 1 } });
  await until(() => seen.pongs, "the stream to answer a ping");
  const created = await control("order", { user: customer.user }); // while the stream is open: unknown to it
  await control("change", { order_id: created.order_id, to: "confirmed" });
  await control("change", { order_id: created.order_id, to: "preparing" });
  await until(() => applied(seen, created.order_id).length >= 3, "the new order's history").catch((error) => {
    throw new Error(`${error.message}: ${JSON.stringify(seen.frames)}`);
  });
  await sleep(300);
  assert.deepEqual(applied(seen, created.order_id), [1, 2, 3]);
  assert.equal(stream.position(created.order_id), 3);
});

test("the server killed and restarted: every seq once, in order, on both kinds of socket", async () => {
  const customer = await control("customer");
  const auth = { bearer: customer.token };
  const id = customer.order_id;
  const order = watch({ url: orderUrl(id), auth, positions: { [id]: 1 } });
  const notifications = watch({ url: notificationsUrl(), auth, positions: { [id]: 1 } });
  await control("change", { order_id: id, to: "confirmed" });
  await until(() => applied(order.seen, id).length && applied(notifications.seen, id).length, "seq 2 live");

  await control("kill");
  for (const to of ["preparing", "shipped", "out_for_delivery"]) await control("change", { order_id: id, to });
  await control("restart");
  await control("change", { order_id: id, to: "delivered" }); // and one live after the restart
  await until(() => applied(order.seen, id).length >= 5 && applied(notifications.seen, id).length >= 5,
              "every change after the restart", 30_000);
  await sleep(300);
  assert.deepEqual(applied(order.seen, id), [2, 3, 4, 5, 6]);
  assert.deepEqual(applied(notifications.seen, id), [2, 3, 4, 5, 6]);
  assert.ok(order.stream.connections >= 2 && notifications.stream.connections >= 2);
});

test("order.reset: a client ahead of the log takes the log's seq, calls onReset, then applies what follows", async () => {
  const customer = await control("customer");
  const id = customer.order_id;
  const auth = { bearer: customer.token };
  const order = watch({ url: orderUrl(id), auth, positions: { [id]: 9 } });
  const notifications = watch({ url: notificationsUrl(), auth, positions: { [id]: 7 } });
  await until(() => order.seen.resets.length && notifications.seen.resets.length, "order.reset on both sockets");
  for (const { seen, stream } of [order, notifications]) {
    assert.deepEqual(seen.resets, [{ type: "order.reset", order_id: id, seq: 1 }]);
    assert.equal(stream.position(id), 1);
  }
  await control("change", { order_id: id, to: "confirmed" });
  await until(() => applied(order.seen, id).length && applied(notifications.seen, id).length, "seq 2");
  assert.deepEqual(applied(order.seen, id), [2]);
  assert.deepEqual(applied(notifications.seen, id), [2]);
});

test("4003 (someone else's order) is not retried", async () => {
  const alice = await control("customer");
  const bob = await control("customer");
  const { stream, seen } = watch({ url: orderUrl(bob.order_id), auth: { bearer: alice.token } });
  await until(() => seen.stops.length, "the stream to stop");
  await sleep(1000); // longer than the first backoff delays
  assert.deepEqual(seen.stops, [{ code: 4003, reason: "not allowed to see this order" }]);
  assert.equal(stream.connections, 1);
  assert.equal(stream.state, "stopped");
});

test("4001: getToken's fresh token reconnects; without one the stream stops", async () => {
  const customer = await control("customer");
  let asked = 0;
  const getToken = async () => { asked += 1; return (await control("token", { user: customer.user })).token; };
  const renewed = watch({ url: orderUrl(customer.order_id), auth: { bearer: "not-a-token" }, getToken,
                         positions: { [customer.order_id]: 1 } });
  await until(() => renewed.seen.pongs, "the socket with the fresh token");
  await control("change", { order_id: customer.order_id, to: "confirmed" });
  await until(() => applied(renewed.seen, customer.order_id).length, "the change");
  assert.equal(asked, 1);
  assert.deepEqual(renewed.seen.closes.map(({ code, reason }) => [code, reason]), [[4001, "not authenticated"]]);

  const refused = watch({ url: orderUrl(customer.order_id), auth: { bearer: "not-a-token" },
                         getToken: async () => null });
  await until(() => refused.seen.stops.length, "the stream to stop");
  assert.equal(refused.stream.connections, 1);
  assert.equal(refused.seen.stops[0].code, 4001);
});

test("a token that expires on an open socket: 4001 token expired, getToken, and nothing lost", async () => {
  const customer = await control("customer");
  const id = customer.order_id;
  const { token } = await control("token", { user: customer.user, lifetime: 2 });
  const getToken = async () => (await control("token", { user: customer.user })).token;
  const { stream, seen } = watch({ url: orderUrl(id), auth: { bearer: token }, getToken, positions: { [id]: 1 } });
  await control("change", { order_id: id, to: "confirmed" });
  await until(() => seen.closes.length, "the expiry", 10_000);
  assert.deepEqual(seen.closes.map(({ code, reason, retry }) => [code, reason, retry]),
                   [[4001, "token expired", true]]);
  await control("change", { order_id: id, to: "preparing" }); // while it reconnects, or after
  await until(() => applied(seen, id).length >= 2, "both changes");
  await sleep(300);
  assert.deepEqual(applied(seen, id), [2, 3]);
  assert.equal(stream.connections, 2);
});

test("in-band refresh: the socket outlives its first token's expiry without reconnecting", async () => {
  const customer = await control("customer");
  const id = customer.order_id;
  const { token } = await control("token", { user: customer.user, lifetime: 3 });
  const getToken = async () => (await control("token", { user: customer.user })).token;
  const { stream, seen } = watch({ url: orderUrl(id), auth: { bearer: token }, getToken, positions: { [id]: 1 },
                                   inBandRefresh: true, refreshBefore: 2000 });
  const refreshed = [];
  stream.on("auth", (frame) => refreshed.push(frame.exp));
  await until(() => refreshed.length, "auth.ok", 10_000);
  assert.ok(refreshed[0] > Date.now() / 1000 + 60, "the new token's expiry");
  await sleep(2500); // past the first token's expiry
  await control("change", { order_id: id, to: "confirmed" });
  await until(() => applied(seen, id).length, "the change");
  assert.deepEqual(applied(seen, id), [2]);
  assert.deepEqual(seen.closes, []);
  assert.equal(stream.connections, 1);
});

test("a refused socket (it opens, then closes at once) backs off more each time; a pong resets it", async () => {
  const { ws } = await control("other-server", { env: { WS_MAX_CONNECTIONS_PER_USER: "1" } });
  const customer = await control("customer");
  const auth = { bearer: customer.token };
  const holder = watch({ url: notificationsUrl(ws), auth });
  await until(() => holder.seen.pongs, "the first socket to be taken");
  const refused = watch({ url: notificationsUrl(ws), auth, backoffBase: 100, backoffMax: 60_000 });
  await until(() => refused.seen.delays.length >= 5, "five refusals", 20_000);
  assert.ok(refused.seen.closes.every(({ code, reason }) => code === 4008 && reason === "too many connections"),
            JSON.stringify(refused.seen.closes));
  const delays = refused.seen.delays.slice(0, 5);
  for (let i = 1; i < delays.length; i += 1) assert.ok(delays[i] >= delays[i - 1], `delays grow: ${delays}`);
  assert.ok(delays[4] >= 800, `the fifth delay is at least 8 times the first ceiling's half: ${delays}`);
  assert.equal(refused.seen.pongs, 0);

  // The holder leaves: the next attempt is taken, and its first pong starts the backoff over.
  holder.stream.stop();
  await until(() => refused.seen.pongs, "the refused stream to be taken", 20_000);
  assert.ok(backoffDelay(refused.stream.attempt, { base: 100 }) <= 100);
  assert.equal(refused.stream.attempt, 0);
});

test("no pong within the deadline: the socket is abandoned and the stream resumes once the server answers", async () => {
  const customer = await control("customer");
  const id = customer.order_id;
  const { stream, seen } = watch({ url: orderUrl(id), auth: { bearer: customer.token }, positions: { [id]: 1 },
                                   pingInterval: 300, pongTimeout: 700, connectTimeout: 700 });
  await until(() => seen.pongs, "the first pong");
  await control("freeze");
  try {
    await until(() => seen.closes.some(({ reason }) => reason === "pong timeout"), "the pong deadline", 5_000);
  } finally {
    await control("thaw");
  }
  await control("change", { order_id: id, to: "confirmed" });
  await until(() => applied(seen, id).length, "the change after the thaw", 20_000);
  assert.deepEqual(applied(seen, id), [2]);
  assert.ok(stream.connections >= 2);
});

test("the chat socket: a message sent comes back as a chat event", async () => {
  const customer = await control("customer");
  const chats = [];
  const { stream, seen } = watch({ url: `${WS_URL}/ws/orders/${customer.order_id}/chat/`,
                                   auth: { bearer: customer.token } });
  stream.on("chat", (frame) => chats.push(frame));
  await until(() => seen.pongs, "the chat socket to answer a ping");
  assert.equal(stream.send({ type: "message", text: "  Where is it?  " }), true);
  await until(() => chats.length, "the message back");
  assert.deepEqual(chats.map(({ sender, text }) => [sender, text]), [[customer.user, "Where is it?"]]);
});

test("in-band refresh needs a bearer token and getToken", () => {
  assert.throws(() => new OrderStream({ url: orderUrl(1), WebSocket, inBandRefresh: true }), /needs a bearer/);
});
