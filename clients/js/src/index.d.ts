// Types of the order-tracking socket client. The frames are realtime/asyncapi.yaml's messages (components/messages).

export type Status =
  | "pending" | "confirmed" | "preparing" | "shipped" | "out_for_delivery" | "delivered" | "cancelled";

export type ErrorCode =
  | "bad_json" | "bad_frame" | "unknown_type" | "forbidden" | "not_found" | "empty_message" | "message_too_long"
  | "auth_not_accepted";

/** One event of the order's log, live or replayed (`orderStatus`). */
export interface OrderStatusFrame {
  type: "order.status";
  order_id: number;
  number: string;
  seq: number;
  status: Status;
  previous: Status | null;
  /** ISO 8601 with offset */
  at: string;
  event_id: number;
}

/** The client was ahead of the order's log (`orderReset`): last := seq, reload the order. */
export interface OrderResetFrame {
  type: "order.reset";
  order_id: number;
  seq: number;
}

export interface ChatMessageFrame {
  type: "chat.message";
  order_id: number;
  id: number;
  sender: string;
  text: string;
  at: string;
}

/** Staff only: the whole list of watchers (replace, do not merge). */
export interface PresenceFrame {
  type: "presence";
  order_id: number;
  watchers: { user: string; since: string }[];
}

/** Staff only: orders stuck in one status. */
export interface OrderStuckFrame {
  type: "order.stuck";
  orders: { order_id: number; number: string; status: Status; since: string | null }[];
}

export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  detail: string;
}

export interface PongFrame {
  type: "pong";
}

/** The answer to an in-band `auth`: the socket now lives until `exp` (epoch seconds). */
export interface AuthOkFrame {
  type: "auth.ok";
  exp: number;
}

export type ServerFrame =
  | OrderStatusFrame | OrderResetFrame | ChatMessageFrame | PresenceFrame | OrderStuckFrame | ErrorFrame | PongFrame
  | AuthOkFrame;

export interface PingFrame {
  type: "ping";
}

/** /ws/notifications/ only: replay the order's events after after_seq. */
export interface SubscribeFrame {
  type: "subscribe";
  order_id: number;
  after_seq: number;
}

/** The chat socket only: at most 2,000 characters, not blank. */
export interface MessageFrame {
  type: "message";
  text: string;
}

/** In-band refresh on a socket opened with an access token: a fresh access token of the same user. */
export interface AuthFrame {
  type: "auth";
  token: string;
}

export type ClientFrame = PingFrame | SubscribeFrame | MessageFrame | AuthFrame;

/** How the socket authenticates: `Sec-WebSocket-Protocol: bearer, <jwt>`, `tracking, <token>`, or the browser's
 * session cookie (no subprotocol; needs an allowed Origin, so browsers only). */
export type Auth = { bearer: string } | { tracking: string } | { session: true };

/** The part of the WebSocket interface the client uses: the browser's, Node 22's global, or the `ws` package. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "error", listener: (event: unknown) => void): void;
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (event: { code: number; reason: string }) => void): void;
  terminate?(): void;
}

export type WebSocketConstructor = new (url: string, protocols?: string[]) => WebSocketLike;

export interface CloseDetail {
  code: number;
  reason: string;
  /** false: the stream stops (4003/4004, or 4001 without a fresh token) */
  retry: boolean;
  /** ms until the next attempt, when retry */
  delay?: number;
}

export interface ReconnectDetail {
  code: number;
  reason: string;
  delay: number;
  /** attempts since the last pong */
  attempt: number;
}

export interface OpenDetail {
  connection: number;
  /** true from the second socket on: re-read GET /api/orders/?updated_since= and follow() new orders (rule 7) */
  reconnect: boolean;
}

export interface StopDetail {
  code: number;
  reason: string;
}

export interface EventMap {
  frame: ServerFrame;
  status: OrderStatusFrame;
  reset: OrderResetFrame;
  chat: ChatMessageFrame;
  presence: PresenceFrame;
  stuck: OrderStuckFrame;
  error: ErrorFrame;
  auth: AuthOkFrame;
  open: OpenDetail;
  close: CloseDetail;
  reconnect: ReconnectDetail;
  stop: StopDetail;
}

export interface OrderStreamOptions {
  /** ws(s)://host/ws/orders/<id>/, ws(s)://host/ws/notifications/ or ws(s)://host/ws/orders/<id>/chat/ */
  url: string;
  /** default: { session: true } */
  auth?: Auth;
  /** order id → last seq the caller shows (from GET /api/orders/); an order socket's order defaults to 0 */
  positions?: Record<number, number>;
  /** After a 4001 close: a fresh token of the same kind, or null to stop. Without it, 4001 stops the stream. */
  getToken?: () => Promise<string | null | undefined>;
  /** default: globalThis.WebSocket */
  WebSocket?: WebSocketConstructor;
  /** ms between pings (default 20000, WS_PING_INTERVAL_SECONDS) */
  pingInterval?: number;
  /** ms to wait for a pong before abandoning the socket (default 10000, WS_PONG_TIMEOUT_SECONDS) */
  pongTimeout?: number;
  /** ms to wait for a socket to open (default 10000) */
  connectTimeout?: number;
  /** first backoff ceiling in ms (default 250); each attempt since the last pong doubles it */
  backoffBase?: number;
  /** backoff cap in ms (default 30000) */
  backoffMax?: number;
  /** [0, 1) source of jitter (default Math.random) */
  random?: () => number;
  /** In-band token refresh: `refreshBefore` ms before the bearer token expires, send getToken's fresh one as
   * {"type":"auth"}; the socket then stays open past the old token's expiry. Needs a bearer token and getToken. */
  inBandRefresh?: boolean;
  /** ms before the token's `exp` to refresh it in band (default 60000) */
  refreshBefore?: number;
  /** default true: a frame of an order with no position subscribes it from 0 (rule 8). false: it is passed on as a
   * `frame` event only (no `status`), for a list of latest statuses that re-reads GET /api/orders/ on every open. */
  followUnseen?: boolean;
  /** subscribes sent at once when a notification socket opens (default 8); the rest follow in batches as large */
  subscribeBatch?: number;
  /** ms between those batches (default 1000), so a client following many orders stays under the frame limit */
  subscribePaceMs?: number;
  onFrame?: (frame: ServerFrame) => void;
  onStatus?: (frame: OrderStatusFrame) => void;
  onReset?: (frame: OrderResetFrame) => void;
  onOpen?: (detail: OpenDetail) => void;
  onClose?: (detail: CloseDetail) => void;
  onStop?: (detail: StopDetail) => void;
}

export declare const DEFAULTS: Readonly<{
  pingInterval: number;
  pongTimeout: number;
  connectTimeout: number;
  backoffBase: number;
  backoffMax: number;
  subscribeBatch: number;
  subscribePaceMs: number;
}>;

export declare function tokenExpiry(token: string): number | undefined;

export declare function socketKind(url: string): "order" | "notifications" | "chat";

export declare function backoffDelay(
  attempt: number, options?: { base?: number; max?: number; random?: () => number },
): number;

export declare class OrderStream {
  constructor(options: OrderStreamOptions);
  readonly url: string;
  readonly kind: "order" | "notifications" | "chat";
  /** sockets opened so far, this one included */
  readonly connections: number;
  /** reconnect attempts since the last first-pong: the backoff exponent */
  readonly attempt: number;
  readonly state: "idle" | "connecting" | "open" | "waiting" | "stopped";
  on<K extends keyof EventMap>(event: K, listener: (detail: EventMap[K]) => void): () => void;
  /** the last seq applied for the order; undefined if never seen */
  position(orderId: number): number | undefined;
  start(): this;
  stop(): void;
  /** drop the socket and connect now rather than after the backoff's wait (the network is back); no-op when stopped */
  reconnect(): void;
  /** /ws/notifications/ only: follow one more order from afterSeq (default 0, its whole history) */
  follow(orderId: number, afterSeq?: number): void;
  /** false when no socket is open (frames are not queued) */
  send(frame: ClientFrame): boolean;
}
