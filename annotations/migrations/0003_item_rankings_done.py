"""Items count their submitted assignments, indexed so that the next item for an annotator (fewest
rankings first) is read off an index instead of counting every item's assignments."""
from django.db import migrations, models


def count_submitted(apps, schema_editor):
    Item = apps.get_model("annotations", "Item")
    Assignment = apps.get_model("annotations", "Assignment")
    counts = (Assignment.objects.filter(status="submitted").values("item").annotate(n=models.Count("pk"))
              .values_list("item", "n"))
    for item_id, n in counts:
        Item.objects.filter(pk=item_id).update(rankings_done=n)


class Migration(migrations.Migration):

    dependencies = [
        ("annotations", "0002_assignment_public_id"),
    ]

    operations = [
        migrations.AddField(
            model_name="item",
            name="rankings_done",
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(count_submitted, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="item",
            index=models.Index(fields=["study", "rankings_done", "id"], name="item_next_for_annotation"),
        ),
    ]
