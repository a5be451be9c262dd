# WebhookEvent and IdempotencyKey now belong to the webhooks app (webhooks/0001_initial): the
# orders app forgets them and Order.webhook points at webhooks.WebhookEvent. State only: the
# tables, their rows and the foreign key constraint stay as they are.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_vocabulary_choices"),
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="order",
                    name="webhook",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="orders",
                        to="webhooks.webhookevent",
                    ),
                ),
                migrations.DeleteModel(name="IdempotencyKey"),
                migrations.DeleteModel(name="WebhookEvent"),
            ],
            database_operations=[],
        ),
    ]
