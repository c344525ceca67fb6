from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("orders", "0007_shipment_columns_database_defaults")]

    operations = [
        migrations.AddField(
            model_name="order",
            name="seen_seq",
            field=models.PositiveIntegerField(default=0, db_default=0, editable=False),
        ),
        migrations.AddField(
            model_name="order",
            name="seen_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
    ]
