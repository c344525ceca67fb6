"""What the orders domain tells the rest of the platform. orders sends these and never imports their listeners:
realtime connects its receivers in RealtimeConfig.ready() (docs/architecture.md, "The delivery boundary").

- `status_changed(event)`: sent inside the transaction that wrote any event of an order's seq stream (a status
  change, or an `updated` event of its shipment fields: `event.kind`); orders.tasks.push_on_commit hands the
  event to the push worker once that transaction commits.
- `event_ready(event)`: deliver this event (its `order` loaded) to live sockets now. Sent by
  orders.delivery.deliver in the push worker, outside any transaction; a receiver's error propagates, so the
  task retries and the event stays unpublished.
- `chat_message_posted(message)`: a chat message (its `sender` loaded) was committed; deliver it to its room.
- `orders_stuck(orders)`: these orders sat in one status too long; tell staff.
- `order_at_risk(order)`: sent inside the transaction that flagged the order at risk of missing its promise;
  orders.tasks has its customer's notice e-mailed once that transaction commits.
"""

from django.dispatch import Signal

status_changed = Signal()
event_ready = Signal()
chat_message_posted = Signal()
orders_stuck = Signal()
order_at_risk = Signal()
