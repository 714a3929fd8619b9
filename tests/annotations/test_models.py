"""The database itself refuses data that would break a study, whatever code writes it."""
import pytest
from django.db import IntegrityError, transaction

from annotations.studies import services
from annotations.models import Criterion, Item, Membership, Response, Study, System
from tests.factories import ItemFactory, ResponseFactory, SystemFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def refused(make):
    with pytest.raises(IntegrityError), transaction.atomic():
        make()


def test_one_response_per_item_and_system(study):
    response = ResponseFactory(item=ItemFactory(study=study))
    refused(lambda: Response.objects.create(item=response.item, system=response.system, text="again"))


def test_item_ids_and_system_names_are_unique_within_a_study(study, researcher):
    ItemFactory(study=study, external_id="p1")
    SystemFactory(study=study, name="alpha")
    refused(lambda: Item.objects.create(study=study, external_id="p1", prompt="x"))
    refused(lambda: System.objects.create(study=study, name="alpha"))
    other = services.create_study(owner=researcher, slug="other", title="Other")
    Item.objects.create(study=other, external_id="p1", prompt="x")
    System.objects.create(study=other, name="alpha")


@pytest.mark.parametrize("make", [
    lambda s: Item.objects.create(study=s, external_id="", prompt="x"),
    lambda s: Item.objects.create(study=s, external_id="p", prompt=""),
    lambda s: System.objects.create(study=s, name=""),
    lambda s: Response.objects.create(item=ItemFactory(study=s), system=SystemFactory(study=s), text=""),
    lambda s: Response.objects.create(item=ItemFactory(study=s), system=SystemFactory(study=s), text="t",
                                      source="scraped"),
], ids=["empty-item-id", "empty-prompt", "empty-system-name", "empty-response", "unknown-source"])
def test_empty_or_invalid_values_are_refused(study, make):
    refused(lambda: make(study))


@pytest.mark.parametrize("field,value", [
    ("responses_per_screen", 1), ("responses_per_screen", 13), ("annotations_per_item", 0),
    ("status", "archived"), ("title", ""),
])
def test_study_settings_are_checked_by_the_database(study, field, value):
    refused(lambda: Study.objects.filter(pk=study.pk).update(**{field: value}))


def test_study_slug_unique_and_criteria_unique(study):
    refused(lambda: Study.objects.create(slug=study.slug, title="x", owner=study.owner))
    refused(lambda: Criterion.objects.create(study=study, name="overall", label="Overall"))


def test_one_membership_per_user_and_study(study):
    refused(lambda: Membership.objects.create(study=study, user=study.owner, role="annotator"))
    refused(lambda: Membership.objects.create(study=study, user=UserFactory(), role="admin"))


def test_create_study_needs_a_criterion_and_makes_owner_a_researcher(researcher):
    with pytest.raises(services.StudyInvalid) as invalid:
        services.create_study(owner=researcher, slug="s", title="S", criteria=[])
    assert "at least one criterion" in invalid.value.errors["criteria"]
    assert not Study.objects.exists()
    study = services.create_study(owner=researcher, slug="s", title="S",
                                  criteria="fluency, identification\ncomforting, suggestion")
    assert list(study.criteria.values_list("name", flat=True)) == [
        "fluency", "identification", "comforting", "suggestion"]
    assert study.is_researcher(researcher)


@pytest.mark.parametrize("kwargs,field", [
    ({"slug": "Not A Slug"}, "slug"), ({"title": "  "}, "title"), ({"criteria": ["a", "a"]}, "criteria"),
    ({"responses_per_screen": 1}, "responses_per_screen"), ({"annotations_per_item": 0}, "annotations_per_item"),
])
def test_create_study_explains_bad_settings(researcher, kwargs, field):
    with pytest.raises(services.StudyInvalid) as invalid:
        services.create_study(owner=researcher, **{"slug": "s", "title": "S", **kwargs})
    assert field in invalid.value.errors


def test_study_opens_only_with_something_to_rank(study):
    with pytest.raises(services.StudyInvalid, match="cannot open yet"):
        services.set_study_status(study, Study.Status.OPEN)
    item = ItemFactory(study=study)
    ResponseFactory(item=item, system=SystemFactory(study=study))
    ResponseFactory(item=item, system=SystemFactory(study=study))
    services.set_study_status(study, Study.Status.OPEN)
    study.refresh_from_db()
    assert study.status == "open"
