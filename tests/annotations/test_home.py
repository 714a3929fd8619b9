"""The home page: a researcher's studies, or an empty state that says where to start."""
import pytest

from annotations.studies import services

pytestmark = pytest.mark.django_db


def test_home_empty_state_then_list(web, researcher):
    page = web.get("/").content.decode()
    assert "No studies yet" in page
    services.create_study(owner=researcher, slug="s1", title="First study")
    page = web.get("/").content.decode()
    assert "First study" in page and "No studies yet" not in page
