"""An attention check names its planted system by foreign key and its rule by a column (was a system
name inside JSON); leaderboards remember the figures_version they were computed at; an assignment's
handle order is `shown_handles` (a ranking's display_order is the same order as system ids)."""
import django.db.models.deletion
from django.db import migrations, models


def checks_to_columns(apps, schema_editor):
    Item = apps.get_model("annotations", "Item")
    System = apps.get_model("annotations", "System")
    for item in Item.objects.filter(attention_check__isnull=False).iterator():
        check = item.attention_check or {}
        system = System.objects.filter(study_id=item.study_id, name=check.get("system")).first()
        if system is None or check.get("rule") not in ("not_first", "last", "first"):
            raise RuntimeError(f"item {item.pk}: attention check {check!r} names no system of its study "
                               "or no known rule; fix or clear it before migrating")
        item.attention_system_id, item.attention_rule = system.pk, check["rule"]
        item.save(update_fields=["attention_system", "attention_rule"])


def columns_to_checks(apps, schema_editor):
    Item = apps.get_model("annotations", "Item")
    for item in Item.objects.filter(attention_system__isnull=False).select_related("attention_system"):
        item.attention_check = {"system": item.attention_system.name, "rule": item.attention_rule}
        item.save(update_fields=["attention_check"])


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0005_response_database_defaults'),
    ]

    operations = [
        migrations.RenameField(
            model_name='assignment',
            old_name='display_order',
            new_name='shown_handles',
        ),
        migrations.AddField(
            model_name='item',
            name='attention_rule',
            field=models.CharField(blank=True, db_default='', choices=[('not_first', 'must not be ranked first (a planted poor response)'), ('last', 'must be ranked last, alone'), ('first', 'must be ranked first, alone (a planted good response)')], max_length=16),
        ),
        migrations.AddField(
            model_name='item',
            name='attention_system',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.RESTRICT, related_name='attention_checks', to='annotations.system'),
        ),
        migrations.AddField(
            model_name='leaderboardsnapshot',
            name='figures_version',
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.AddField(
            model_name='study',
            name='figures_version',
            field=models.PositiveIntegerField(db_default=0, default=0),
        ),
        migrations.RunPython(checks_to_columns, columns_to_checks),
        migrations.RemoveField(
            model_name='item',
            name='attention_check',
        ),
        migrations.AddConstraint(
            model_name='item',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('attention_rule', ''), ('attention_system__isnull', True)), models.Q(('attention_rule__in', ['not_first', 'last', 'first']), ('attention_system__isnull', False)), _connector='OR'), name='item_attention_check_whole'),
        ),
    ]
