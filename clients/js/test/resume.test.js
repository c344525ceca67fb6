// The resume bookkeeping on frame orders a real server produces only by chance (a push overtaken by a later one,
// a repeat from a retry): a scripted socket hands the client exactly those frames. No timing is asserted.
import assert from "node:assert/strict";
import { afterEach, test } from "node:test";

import { backoffDelay, OrderStream } from "../src/index.js";

/** A WebSocket stand-in that records what the client sends and lets the test deliver frames. */
function scripted() {
  const sockets = [];
  class ScriptedSocket {
    constructor(url, protocols) {
      this.url = url;
      this.protocols = protocols;
      this.sent = [];
      this.listeners = {};
      sockets.push(this);
    }
    addEventListener(type, listener) { (this.listeners[type] ??= []).push(listener); }
    send(data) { this.sent.push(JSON.parse(data)); }
    close() {}
    fire(type, event = {}) { for (const listener of this.listeners[type] ?? []) listener(event); }
    deliver(frame) { this.fire("message", { data: JSON.stringify(frame) }); }
  }
  return { sockets, ScriptedSocket };
}

const status = (order_id, seq) => ({ type: "order.status", order_id, seq, number: "ORD-1", status: "confirmed",
                                     previous: "pending", at: "2026-12-01T00:00:00+00:00", event_id: seq });

const started = [];
afterEach(() => {
  while (started.length) started.pop().stop();
});

function stream(url, positions = {}) {
  const { sockets, ScriptedSocket } = scripted();
  const applied = [];
  const resets = [];
  const client = new OrderStream({ url, auth: { bearer: "jwt" }, positions, WebSocket: ScriptedSocket,
                                   onStatus: (f) => applied.push([f.order_id, f.seq]), onReset: (f) => resets.push(f) });
  started.push(client.start());
  sockets[0].fire("open");
  return { client, socket: sockets[0], applied, resets };
}

test("repeats are dropped and frames ahead are held until the gap fills", () => {
  const { socket, applied, client } = stream("ws://h/ws/orders/7/", { 7: 2 });
  assert.equal(new URL(socket.url).searchParams.get("after_seq"), "2");
  assert.deepEqual(socket.protocols, ["bearer", "jwt"]);
  for (const seq of [2, 5, 3, 3, 4, 6, 5]) socket.deliver(status(7, seq));
  assert.deepEqual(applied, [[7, 3], [7, 4], [7, 5], [7, 6]]);
  assert.equal(client.position(7), 6);
});

test("the notification stream subscribes every known order at its position when it opens", () => {
  const { socket } = stream("ws://h/ws/notifications/", { 7: 2, 8: 0 });
  assert.deepEqual(socket.sent.filter((f) => f.type === "subscribe"),
                   [{ type: "subscribe", order_id: 7, after_seq: 2 }, { type: "subscribe", order_id: 8, after_seq: 0 }]);
  assert.deepEqual(socket.sent.at(-1), { type: "ping" });
});

test("an unknown order is subscribed from 0; its frames are kept and applied in order", () => {
  const { socket, applied, client } = stream("ws://h/ws/notifications/", {});
  socket.deliver(status(9, 2)); // ahead: held
  assert.deepEqual(socket.sent.filter((f) => f.type === "subscribe"), [{ type: "subscribe", order_id: 9, after_seq: 0 }]);
  socket.deliver(status(9, 1)); // the replay
  socket.deliver(status(9, 2)); // the replay's copy of the held one: a repeat
  assert.deepEqual(applied, [[9, 1], [9, 2]]);
  assert.equal(client.position(9), 2);
});

test("order.reset sets the position to its seq and forgets frames held from the old log", () => {
  const { socket, applied, resets, client } = stream("ws://h/ws/orders/7/", { 7: 5 });
  socket.deliver(status(7, 8)); // held: ahead of 6
  socket.deliver({ type: "order.reset", order_id: 7, seq: 2 });
  assert.deepEqual(resets, [{ type: "order.reset", order_id: 7, seq: 2 }]);
  assert.equal(client.position(7), 2);
  socket.deliver(status(7, 3));
  for (const seq of [4, 5, 6, 7]) socket.deliver(status(7, seq));
  assert.deepEqual(applied.map(([, seq]) => seq), [3, 4, 5, 6, 7]); // the old log's 8 was dropped by the reset
  socket.deliver(status(7, 8));
  assert.deepEqual(applied.map(([, seq]) => seq), [3, 4, 5, 6, 7, 8]);
});

test("backoff: each attempt's delay lies in [ceiling/2, ceiling], the ceiling doubling up to the cap", () => {
  for (const [attempt, low, high] of [[0, 125, 250], [1, 250, 500], [4, 2000, 4000], [20, 15000, 30000]]) {
    assert.equal(backoffDelay(attempt, { random: () => 0 }), low);
    assert.equal(backoffDelay(attempt, { random: () => 0.999999 }) <= high, true);
    assert.ok(backoffDelay(attempt, { random: () => 0.999999 }) > high * 0.99);
  }
});

test("a tracking token is offered as the tracking subprotocol, a session as none", () => {
  const { sockets, ScriptedSocket } = scripted();
  new OrderStream({ url: "ws://h/ws/orders/7/", auth: { tracking: "t0k" }, WebSocket: ScriptedSocket }).start().stop();
  new OrderStream({ url: "ws://h/ws/orders/7/", WebSocket: ScriptedSocket }).start().stop();
  assert.deepEqual(sockets.map((s) => s.protocols), [["tracking", "t0k"], []]);
});

test("reconnect() drops the socket and opens the next one at once, resuming from the latest position", () => {
  const { sockets, ScriptedSocket } = scripted();
  const applied = [];
  const closes = [];
  const client = new OrderStream({ url: "ws://h/ws/orders/7/", positions: { 7: 2 }, WebSocket: ScriptedSocket,
                                   onStatus: (f) => applied.push(f.seq), onClose: (d) => closes.push(d) });
  started.push(client.start());
  sockets[0].fire("open");
  sockets[0].deliver(status(7, 3));
  client.reconnect();
  assert.equal(sockets.length, 2);
  assert.equal(new URL(sockets[1].url).searchParams.get("after_seq"), "3");
  assert.deepEqual(closes, [{ code: 1000, reason: "reconnecting", retry: true, delay: 0 }]);
  sockets[0].deliver(status(7, 4)); // the dropped socket is no longer listened to
  sockets[0].fire("close", { code: 1000 });
  assert.equal(sockets.length, 2);
  sockets[1].fire("open");
  sockets[1].deliver(status(7, 4));
  assert.deepEqual(applied, [3, 4]);

  // While waiting out a backoff, it skips the wait (and the wait's own connect never comes).
  sockets[1].fire("close", { code: 1006 });
  assert.equal(client.state, "waiting");
  client.reconnect();
  assert.equal(sockets.length, 3);
  assert.equal(client.state, "connecting");
  client.stop();
  client.reconnect();
  assert.equal(sockets.length, 3);
});

test("followUnseen false: an order with no position is passed on as a frame, neither subscribed nor applied", () => {
  const { sockets, ScriptedSocket } = scripted();
  const applied = [];
  const frames = [];
  const client = new OrderStream({ url: "ws://h/ws/notifications/", positions: { 7: 1 }, followUnseen: false,
                                   WebSocket: ScriptedSocket, onStatus: (f) => applied.push([f.order_id, f.seq]),
                                   onFrame: (f) => frames.push(f) });
  started.push(client.start());
  sockets[0].fire("open");
  sockets[0].deliver(status(9, 4));
  sockets[0].deliver(status(7, 2));
  assert.deepEqual(sockets[0].sent.filter((f) => f.type === "subscribe"), [{ type: "subscribe", order_id: 7, after_seq: 1 }]);
  assert.deepEqual(applied, [[7, 2]]);
  assert.deepEqual(frames.filter((f) => f.type === "order.status").map((f) => [f.order_id, f.seq]), [[9, 4], [7, 2]]);
  assert.equal(client.position(9), undefined);
});

test("a notification stream following many orders sends its subscribes in paced batches, at their latest positions", (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "setInterval"] });
  const positions = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [i + 1, 1]));
  const { socket } = stream("ws://h/ws/notifications/", positions);
  const subscribed = () => socket.sent.filter((f) => f.type === "subscribe");
  // Under the server's burst of 20 client frames (the first ping included), never one subscribe per order at once.
  assert.equal(subscribed().length, 8);
  socket.deliver(status(20, 2)); // order 20 moved on while it waited: its subscribe resumes after seq 2
  t.mock.timers.tick(1000);
  assert.equal(subscribed().length, 16);
  t.mock.timers.tick(1000);
  assert.equal(subscribed().length, 20);
  assert.deepEqual(subscribed().at(-1), { type: "subscribe", order_id: 20, after_seq: 2 });
  assert.deepEqual(new Set(subscribed().map((f) => f.order_id)).size, 20);
  t.mock.timers.tick(5000);
  assert.equal(subscribed().length, 20);
});
