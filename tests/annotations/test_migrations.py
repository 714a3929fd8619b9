"""Data migrations carry what the site stored before them."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("annotations", "0005_response_database_defaults")]
AFTER = [("annotations", "0006_attention_check_by_key_figures_version_shown_handles")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def test_an_attention_check_named_in_json_becomes_a_system_key_and_a_rule():
    try:
        apps = _migrate(BEFORE)
        User, Study, System, Item = (apps.get_model("auth", "User"), apps.get_model("annotations", "Study"),
                                     apps.get_model("annotations", "System"), apps.get_model("annotations", "Item"))
        owner = User.objects.create(username="owner")
        study = Study.objects.create(slug="old", title="Old", owner=owner)
        planted = System.objects.create(study=study, name="sys-poor")
        System.objects.create(study=study, name="sys-good")
        Item.objects.create(study=study, external_id="p1", prompt="A post",
                            attention_check={"system": "sys-poor", "rule": "not_first"})
        Item.objects.create(study=study, external_id="p2", prompt="Another post")

        apps = _migrate(AFTER)
        Item = apps.get_model("annotations", "Item")
        checks = dict(Item.objects.values_list("external_id", "attention_system_id"))
        rules = dict(Item.objects.values_list("external_id", "attention_rule"))
        assert checks == {"p1": planted.pk, "p2": None} and rules == {"p1": "not_first", "p2": ""}

        apps = _migrate(BEFORE)  # and back, for a rollback
        Item = apps.get_model("annotations", "Item")
        assert dict(Item.objects.values_list("external_id", "attention_check")) == {
            "p1": {"system": "sys-poor", "rule": "not_first"}, "p2": None}
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
