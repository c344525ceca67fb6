from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orders import tasks, tokens

        tokens.key_ring()  # a bad or weak JWT key refuses the start, not the first login
        assert tasks  # imported to connect status_changed to the push on commit
