"""Study pages: access, empty states, what is missing, and escaping of uploaded text."""
import io
import json

import pytest

from annotations.studies import services
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("x")</script><img src=x onerror=alert(1)><b>bold</b>'


def load(study, records):
    data = "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode()
    return services.import_outputs(study, io.BytesIO(data), filename="o.jsonl")


@pytest.mark.parametrize("url", ["/", "/studies/new/", "/studies/pilot/", "/studies/pilot/items/p1/",
                                 "/account/token/"])
def test_pages_need_login(client, study, url):
    reply = client.get(url)
    assert reply.status_code == 302
    assert reply["Location"].startswith("/login/")


@pytest.mark.parametrize("url", ["/studies/pilot/", "/studies/pilot/items/p1/"])
def test_other_researchers_get_404(client, study, url):
    load(study, [{"item_id": "p1", "prompt": "x", "system": "a", "response": "y"}])
    client.force_login(UserFactory(username="mallory"))
    assert client.get(url).status_code == 404
    assert client.post("/studies/pilot/upload/").status_code == 404


def test_create_study_form(web):
    reply = web.post("/studies/new/", {"title": "Pilot 2", "slug": "pilot-2", "criteria": "fluency, comforting",
                                       "responses_per_screen": 4, "annotations_per_item": 3})
    assert reply.status_code == 302
    page = web.get(reply["Location"]).content.decode()
    assert "Nothing loaded yet" in page
    assert "fluency" in page and "comforting" in page
    bad = web.post("/studies/new/", {"title": "x", "slug": "pilot-2", "criteria": "",
                                     "responses_per_screen": 4, "annotations_per_item": 3})
    assert bad.status_code == 200
    assert "This field is required" in bad.content.decode()


def test_study_page_shows_what_is_missing(web, study):
    load(study, [
        {"item_id": "p1", "prompt": "one", "system": "alpha", "response": "a"},
        {"item_id": "p1", "prompt": "one", "system": "beta", "response": "b"},
        {"item_id": "p2", "prompt": "two", "system": "alpha", "response": "c"},
    ])
    page = " ".join(web.get("/studies/pilot/").content.decode().split())
    assert "3 of 4 responses" in page.replace("<strong>", "").replace("</strong>", "")
    assert "1 item missing responses" in page
    assert '<a href="/studies/pilot/items/p2/">p2</a></td> <td><code>beta</code>' in page


def test_uploaded_markup_is_shown_as_text_never_run(web, study):
    load(study, [{"item_id": "p1", "prompt": MARKUP, "system": "alpha", "response": MARKUP,
                  "reasoning": MARKUP}])
    for url in ["/studies/pilot/", "/studies/pilot/items/p1/"]:
        page = web.get(url).content.decode()
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        assert "<b>bold</b>" not in page
    page = web.get("/studies/pilot/items/p1/").content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page


def test_item_page_keeps_line_breaks_and_cjk(web, study):
    text = "第一段。\n\n  第二段，缩进保留。"
    load(study, [{"item_id": "zh", "prompt": text, "system": "alpha", "response": text}])
    page = web.get("/studies/pilot/items/zh/").content.decode()
    assert f'<div class="text">{text}</div>' in page


def test_instructions_markdown_is_sanitised(web, researcher):
    services.create_study(owner=researcher, slug="md", title="Md",
                          instructions="**Rank** them.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))")
    page = web.get("/studies/md/").content.decode()
    assert "<strong>Rank</strong>" in page
    assert "<script>alert(1)</script>" not in page
    assert "javascript:" not in page


def test_status_change_explains_why_it_cannot_open(web, study):
    reply = web.post("/studies/pilot/status/", {"status": "open"}, follow=True)
    assert "cannot open yet" in reply.content.decode()
    study.refresh_from_db()
    assert study.status == "draft"


def test_api_token_page_creates_and_replaces(web):
    assert "You have no API token yet" in web.get("/account/token/").content.decode()
    first = web.post("/account/token/", follow=True).content.decode()
    assert "Authorization: Token " in first
    second = web.post("/account/token/", follow=True).content.decode()
    assert "the old one no longer works" in second


def test_edit_settings_saves_and_explains(web, study):
    page = web.get("/studies/pilot/edit/").content.decode()
    assert "stay fixed" in page
    reply = web.post("/studies/pilot/edit/", {"title": "Renamed", "instructions": "Be kind.",
                                              "responses_per_screen": 3, "annotations_per_item": 5,
                                              "lease_minutes": 20, "attention_min_pass_rate": 0.8})
    assert reply.status_code == 302
    study.refresh_from_db()
    assert (study.title, study.responses_per_screen, study.annotations_per_item, study.lease_minutes,
            study.attention_min_pass_rate) == ("Renamed", 3, 5, 20, 0.8)
    bad = web.post("/studies/pilot/edit/", {"title": "", "responses_per_screen": 1, "annotations_per_item": 5,
                                            "lease_minutes": 20})
    assert bad.status_code == 200
    study.refresh_from_db()
    assert study.title == "Renamed"


def test_add_collaborator(web, study, client):
    UserFactory(username="cole")
    reply = web.post("/studies/pilot/researchers/", {"username": "cole"}, follow=True)
    assert "cole is now a researcher of this study" in reply.content.decode()
    again = web.post("/studies/pilot/researchers/", {"username": "cole"})
    assert "already a researcher" in again.content.decode()
    missing = web.post("/studies/pilot/researchers/", {"username": "ghost"})
    assert "no user &#x27;ghost&#x27;" in missing.content.decode()
    client.force_login(UserFactory(username="cole"))
    assert client.get("/studies/pilot/").status_code == 200


def test_an_annotator_who_ranked_cannot_become_a_researcher(web, study):
    from django.utils import timezone

    from annotations.models import Assignment
    from tests.factories import ItemFactory

    annotator = UserFactory(username="ann")
    services.add_member(study, annotator, "annotator")
    Assignment.objects.create(study=study, item=ItemFactory(study=study), annotator=annotator,
                              leased_at=timezone.now(), expires_at=timezone.now())
    reply = web.post("/studies/pilot/researchers/", {"username": "ann"})
    assert "must stay blind" in reply.content.decode()
    assert not study.is_researcher(annotator)


def test_only_researchers_may_create_studies(client, db):
    annotator = UserFactory(username="crowd-worker")
    client.force_login(annotator)
    assert client.get("/studies/new/").status_code == 403
    assert client.post("/studies/new/", {"title": "x", "slug": "x", "criteria": "overall",
                                         "responses_per_screen": 4, "annotations_per_item": 3}).status_code == 403
    page = client.get("/").content.decode()
    assert "New study" not in page and "ask an administrator" in page
