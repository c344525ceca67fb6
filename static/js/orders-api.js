// Reads of GET /api/orders/ shared by the live pages: the list walked page by page to its end (no silent
// cap), and one order. See docs/protocol.md for the parameters and the answer.

const PAGE_LIMIT = 200; // the API's largest page

// How far before the last snapshot a catch-up starts reading: an order's updated_at is stamped when it is
// saved, a moment before its transaction commits, and the web and worker hosts' clocks differ a little.
export const SINCE_MARGIN_MS = 60000;

// Every order matching `params` (e.g. {updated_since}), following `next` until it is null, and the server
// time of the first page (`as_of`): whatever changed after it a later `updated_since` of it finds.
export async function fetchAllOrders(params = {}) {
  const orders = [];
  let asOf = null;
  let cursor = null;
  do {
    const query = new URLSearchParams({ ...params, limit: String(PAGE_LIMIT) });
    if (cursor) query.set("cursor", cursor);
    const response = await fetch(`/api/orders/?${query}`, { credentials: "same-origin" });
    if (!response.ok) throw new Error(`GET /api/orders/ answered ${response.status}`);
    const page = await response.json();
    asOf ??= page.as_of;
    orders.push(...page.orders);
    cursor = page.next;
  } while (cursor);
  return { orders, asOf };
}

export async function fetchOrder(orderId) {
  const response = await fetch(`/api/orders/${orderId}/`, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`GET /api/orders/${orderId}/ answered ${response.status}`);
  return response.json();
}

// `updated_since` for a catch-up after the snapshot taken at server time `asOf`.
export function sinceBefore(asOf) {
  return new Date(Date.parse(asOf) - SINCE_MARGIN_MS).toISOString();
}

// Runs `catchUp` now, or once more right after the run in progress; on a failure retries after `retryMs`
// (the page keeps its last snapshot, so nothing is skipped).
export function oneAtATime(catchUp, { retryMs = 5000 } = {}) {
  let running = false;
  let again = false;
  let retryTimer = null;
  async function run() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    clearTimeout(retryTimer);
    try {
      do {
        again = false;
        await catchUp();
      } while (again);
    } catch (error) {
      console.warn("Catching up failed; retrying.", error);
      retryTimer = setTimeout(run, retryMs);
    } finally {
      running = false;
    }
  }
  return run;
}
