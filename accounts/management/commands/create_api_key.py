"""`manage.py create_api_key NAME --scopes orders:read,orders:write`: a new service API key, printed once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts import apikeys
from accounts.models import Scope


class Command(BaseCommand):
    help = "Create a service API key. Its secret is printed alone on the last line, once: only its hash is kept."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="What the key is for, e.g. the shop's system that will use it.")
        parser.add_argument("--scopes", required=True,
                            help=f"Comma-separated, from: {', '.join(Scope.values)}.")

    def handle(self, *args: Any, name: str, scopes: str, **options: Any) -> None:
        if not name.strip() or len(name) > apikeys.MAX_NAME_LENGTH:
            raise CommandError(f"The name must be 1 to {apikeys.MAX_NAME_LENGTH} characters.")
        try:
            key, secret = apikeys.issue_api_key(name=name.strip(), scopes=scopes.split(","))
        except apikeys.BadScopes as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"API key {key.pk} \"{key.name}\" with scopes {', '.join(key.scopes)}. "
                          "Store it now: it is not shown again.")
        self.stdout.write(secret)
