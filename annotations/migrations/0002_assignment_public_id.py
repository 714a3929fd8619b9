"""Assignments get an opaque public id for annotator URLs (existing rows get their own token)."""
import secrets

from django.db import migrations, models

import annotations.models


def fill_public_ids(apps, schema_editor):
    Assignment = apps.get_model("annotations", "Assignment")
    for assignment in Assignment.objects.filter(public_id__isnull=True).only("pk"):
        assignment.public_id = secrets.token_urlsafe(24)
        assignment.save(update_fields=["public_id"])


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0001_initial"),
    ]

    operations = [
        # Three steps, so that rows already stored each get a distinct token before the unique index.
        migrations.AddField(
            model_name="assignment",
            name="public_id",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.RunPython(fill_public_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="assignment",
            name="public_id",
            field=models.CharField(default=annotations.models._token, max_length=32, unique=True),
        ),
    ]
