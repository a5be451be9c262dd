"""Orders filled before Order.filled_at was kept: their fills were last recorded at their
updated_at (the daily loss counts them on that day, as it did before the field came)."""

from django.db import migrations
from django.db.models import F


def backfill(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Order.objects.filter(filled_qty__gt=0, filled_at__isnull=True).update(filled_at=F("updated_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0013_order_filled_at"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
