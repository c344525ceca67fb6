"""The orders domain's signal: `status_changed(event=OrderEvent)`, sent inside the transaction that wrote the event.

Its receiver (orders.tasks.push_on_commit) hands the event to the push worker once that transaction commits.
"""

from django.dispatch import Signal

status_changed = Signal()
