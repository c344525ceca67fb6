"""The accounts app's signal: `logins_ended(user_id)`, sent when token logins of a user were revoked (logout, log out
everywhere, reuse); realtime's receiver has that user's open sockets re-check their credentials at once."""

from django.dispatch import Signal

logins_ended = Signal()
