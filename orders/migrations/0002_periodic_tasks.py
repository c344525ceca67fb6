"""Once registered the platform's periodic tasks; worker/schedule.py now does that after every `migrate` (synced,
idempotent), so this migration is kept empty for the databases that already ran it."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = []
