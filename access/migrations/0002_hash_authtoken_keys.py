"""Hash the keys of rest_framework.authtoken (plain text in ``authtoken_token``) into
ApiToken rows, so existing clients keep working, then delete the plain keys.

rest_framework.authtoken is no longer installed, so its table is read with SQL, and only if it
exists (a database created after this change never had it). The emptied table is left in place:
dropping it would leave Django's migration records for that app pointing at nothing.
"""

import datetime as dt
import hashlib

from django.db import migrations
from django.utils import timezone

PREFIX_LENGTH = 12  # as access.models.PREFIX_LENGTH at the time of this migration
TABLE = "authtoken_token"


def hash_authtoken_keys(apps, schema_editor):
    connection = schema_editor.connection
    if TABLE not in connection.introspection.table_names():
        return
    api_token = apps.get_model("access", "ApiToken")
    quoted = schema_editor.quote_name(TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {quoted}")  # noqa: S608 - fixed table name
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        if isinstance(created, str):  # SQLite hands raw SQL its text form
            created = dt.datetime.fromisoformat(created)
        if timezone.is_naive(created):
            created = timezone.make_aware(created, dt.UTC)
        token = api_token.objects.create(
            user_id=user_id,
            name="rest_framework.authtoken",
            prefix=key[:PREFIX_LENGTH],
            digest=hashlib.sha256(key.encode()).hexdigest(),
        )
        api_token.objects.filter(pk=token.pk).update(created_at=created)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {quoted}")  # noqa: S608 - fixed table name


class Migration(migrations.Migration):
    dependencies = [("access", "0001_initial")]

    # Not reversible into plain keys: going back leaves the tokens hashed (and still valid here).
    operations = [migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop)]
