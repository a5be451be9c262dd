"""Re-encrypt every stored secret with the newest FIELD_ENCRYPTION_KEYS key.

Rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it), restart,
run this command, then drop the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.db.models import Field

from quanttrade.crypto import rotate
from strategies.models import Account, Strategy

ENCRYPTED_COLUMNS = {Strategy: ["token"], Account: ["api_key", "api_secret", "passphrase"]}


class Command(BaseCommand):
    help = "Re-encrypt stored credentials and tokens with the first FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        count = 0
        with transaction.atomic():
            for model, fields in ENCRYPTED_COLUMNS.items():
                table = model._meta.db_table
                for field in fields:
                    model_field = model._meta.get_field(field)
                    assert isinstance(model_field, Field)  # a concrete column, not a relation
                    column = model_field.column
                    with connection.cursor() as cursor:
                        cursor.execute(f"SELECT id, {column} FROM {table} WHERE {column} <> ''")  # noqa: S608 - names from the model
                        rows = cursor.fetchall()
                    for pk, stored in rows:
                        with connection.cursor() as cursor:
                            sql = f"UPDATE {table} SET {column} = %s WHERE id = %s"  # noqa: S608 - names from the model
                            cursor.execute(sql, [rotate(stored), pk])
                        count += 1
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {count} stored secrets."))
