"""OrderEvent.emailed_at (the e-mail fallback's once-per-event claim) and the presence-prune periodic task."""

from django.db import migrations, models

PRUNE_TASK = ("Prune silent presence connections", "orders.tasks.prune_presence", 30, "seconds")


def create_prune_task(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    name, task, every, period = PRUNE_TASK
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    PeriodicTask.objects.get_or_create(name=name, defaults={"task": task, "interval": schedule})


def remove_prune_task(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=PRUNE_TASK[0]).delete()


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
        migrations.RunPython(create_prune_task, remove_prune_task),
    ]
