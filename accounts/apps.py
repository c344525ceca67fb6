from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import throttling, tokens

        tokens.key_ring()  # a bad or weak JWT key refuses the start, not the first login
        assert throttling  # imported to connect user_logged_in to forgiving a counted login attempt
