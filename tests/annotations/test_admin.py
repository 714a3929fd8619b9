"""The admin lists every model for operators, and refuses to hand-edit responses."""
import pytest

from tests.factories import ItemFactory, ResponseFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("model", ["study", "system", "item", "response", "responserevision", "outputupload"])
def test_admin_changelists_render(client, study, model):
    ResponseFactory(item=ItemFactory(study=study))
    client.force_login(UserFactory(username="admin", is_staff=True, is_superuser=True))
    assert client.get(f"/admin/annotations/{model}/").status_code == 200


def test_responses_cannot_be_added_by_hand(client, study):
    client.force_login(UserFactory(username="admin", is_staff=True, is_superuser=True))
    assert client.get("/admin/annotations/response/add/").status_code == 403
