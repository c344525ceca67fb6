// Delivery receipts (`seen`) on a scripted socket: when the client sends them, for which seq, and when it holds
// them back. No timing is asserted beyond "after this turn of the event loop" (ackInterval 0).
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { OrderStream } from "../src/index.js";

class ScriptedSocket {
  static sockets = [];
  constructor(url, protocols) {
    this.url = url;
    this.protocols = protocols;
    this.sent = [];
    this.listeners = {};
    ScriptedSocket.sockets.push(this);
  }
  addEventListener(type, listener) { (this.listeners[type] ??= []).push(listener); }
  send(data) { this.sent.push(JSON.parse(data)); }
  close() {}
  fire(type, event = {}) { for (const listener of this.listeners[type] ?? []) listener(event); }
  deliver(frame) { this.fire("message", { data: JSON.stringify(frame) }); }
  receipts() { return this.sent.filter((frame) => frame.type === "seen"); }
}

const status = (order_id, seq) => ({ type: "order.status", order_id, seq, number: "ORD-1", status: "confirmed",
                                     previous: "pending", at: "2026-12-01T00:00:00+00:00", event_id: seq });
const turn = () => new Promise((resolve) => setTimeout(resolve, 5));
const started = [];

afterEach(() => {
  while (started.length) started.pop().stop();
  ScriptedSocket.sockets = [];
  delete globalThis.document;
});

function open(url, options = {}) {
  const client = new OrderStream({ url, auth: { bearer: "jwt" }, WebSocket: ScriptedSocket, ackInterval: 0,
                                   ...options });
  started.push(client.start());
  const socket = ScriptedSocket.sockets.at(-1);
  socket.fire("open");
  return { client, socket };
}

test("with ackSeen an order socket acknowledges its position at open, then each round of applied frames once", async () => {
  const rendered = [];
  const { socket } = open("ws://h/ws/orders/7/", {
    ackSeen: true, positions: { 7: 2 },
    onStatus: (frame) => rendered.push(frame.seq),
  });
  await turn();
  assert.deepEqual(socket.receipts(), [{ type: "seen", order_id: 7, seq: 2 }]); // what the page was rendered with
  for (const seq of [3, 4, 5]) socket.deliver(status(7, seq));
  assert.equal(socket.receipts().length, 1, "a receipt goes out after the listeners ran, not while they run");
  await turn();
  assert.deepEqual(rendered, [3, 4, 5]);
  assert.deepEqual(socket.receipts().at(-1), { type: "seen", order_id: 7, seq: 5 }); // one for the round
  assert.equal(socket.receipts().length, 2);
  socket.deliver(status(7, 5)); // a repeat: not applied, not acknowledged again
  await turn();
  assert.equal(socket.receipts().length, 2);
});

test("receipts on the notification stream are per order, and none without ackSeen unless seen() is called", async () => {
  const { socket } = open("ws://h/ws/notifications/", { ackSeen: true, positions: { 7: 1, 8: 0 } });
  socket.deliver(status(7, 2));
  socket.deliver(status(8, 1));
  await turn();
  await turn(); // one receipt a round
  // Not the positions at open (a stream following many orders would crowd out its subscribes): what it applied.
  assert.deepEqual(socket.receipts(), [{ type: "seen", order_id: 7, seq: 2 }, { type: "seen", order_id: 8, seq: 1 }]);

  const quiet = open("ws://h/ws/orders/9/", { positions: { 9: 1 } });
  quiet.socket.deliver(status(9, 2));
  await turn();
  assert.deepEqual(quiet.socket.receipts(), []);
  quiet.client.seen(9, 2);
  quiet.client.seen(9, 1); // not above what is acknowledged: dropped
  await turn();
  assert.deepEqual(quiet.socket.receipts(), [{ type: "seen", order_id: 9, seq: 2 }]);
});

test("a hidden page acknowledges nothing until it is shown, and a closed socket until it opens", async () => {
  const page = new EventTarget();
  page.visibilityState = "hidden";
  globalThis.document = page;
  const { client, socket } = open("ws://h/ws/orders/7/", { ackSeen: true, positions: { 7: 1 } });
  socket.deliver(status(7, 2));
  await turn();
  assert.deepEqual(socket.receipts(), []);
  page.visibilityState = "visible";
  page.dispatchEvent(new Event("visibilitychange"));
  assert.deepEqual(socket.receipts(), [{ type: "seen", order_id: 7, seq: 2 }]);

  socket.fire("close", { code: 1006, reason: "" });
  client.seen(7, 3); // shown while the socket was down (e.g. from GET /api/orders/7/)
  await turn();
  assert.equal(socket.receipts().length, 1);
  await new Promise((resolve) => setTimeout(resolve, 400)); // the reconnect's backoff (base 250 ms)
  const next = ScriptedSocket.sockets.at(-1);
  assert.notEqual(next, socket);
  next.fire("open");
  assert.deepEqual(next.receipts(), [{ type: "seen", order_id: 7, seq: 3 }]);
});

test("after order.reset below what was acknowledged, the next frames are acknowledged again", async () => {
  const { socket } = open("ws://h/ws/orders/7/", { ackSeen: true, positions: { 7: 5 } });
  await turn();
  socket.deliver({ type: "order.reset", order_id: 7, seq: 2 });
  socket.deliver(status(7, 3));
  await turn();
  assert.deepEqual(socket.receipts().map((frame) => frame.seq), [5, 3]);
});
