"""Registers the webhook sweep with django-celery-beat: due deliveries (retries, lapsed claims) every 5 seconds."""

from django.db import migrations

SWEEP_TASK = ("Send due webhook deliveries", "integrations.tasks.send_due_webhooks", 5, "seconds")


def create_sweep_task(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    name, task, every, period = SWEEP_TASK
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": schedule})


def remove_sweep_task(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=SWEEP_TASK[0]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_sweep_task, remove_sweep_task)]
