"""OrderEvent.emailed_at (the e-mail fallback's once-per-event claim). The presence-prune periodic task it once
registered is in worker/schedule.py now, synced after every `migrate`."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_periodic_tasks"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="orderevent",
            name="emailed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
