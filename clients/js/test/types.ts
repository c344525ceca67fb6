// Compiled by `tsc --noEmit` (tests/clients/test_js_client.py): the declarations are usable as documented.
import { OrderStream, type OrderStatusFrame, type ServerFrame } from "../src/index.js";

const stream = new OrderStream({
  url: "wss://orders.example.com/ws/notifications/",
  auth: { bearer: "jwt" },
  positions: { 7: 3 },
  getToken: async () => null,
  onStatus: (frame: OrderStatusFrame) => frame.seq + 1,
  onReset: (frame) => frame.seq,
});
stream.on("frame", (frame: ServerFrame) => {
  if (frame.type === "order.status") {
    const previous: string | null = frame.previous;
    void previous;
  }
});
const off = stream.on("reconnect", ({ delay, attempt }) => delay * attempt);
off();
stream.follow(8, 0);
const sent: boolean = stream.send({ type: "subscribe", order_id: 8, after_seq: 0 });
void sent;
stream.start().stop();
new OrderStream({ url: "wss://x/ws/orders/1/", auth: { bearer: "t" }, getToken: async () => "u", inBandRefresh: true,
                  refreshBefore: 30_000 });
const list = new OrderStream({ url: "wss://x/ws/notifications/", followUnseen: false });
list.reconnect();
