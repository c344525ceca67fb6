from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from orders import delivery
        from realtime import receivers

        # Connecting the receivers (by importing them) and registering the presence reader is what lets
        # orders deliver to sockets without importing realtime (docs/architecture.md, "The delivery boundary").
        delivery.register_presence(receivers.LivePresence())
