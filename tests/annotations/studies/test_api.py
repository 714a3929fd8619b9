"""Every API endpoint: anonymous callers get 401, anyone but the study's researchers 404."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotations.studies import services
from annotations.models import Study
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

ROW = b'{"item_id": "p1", "prompt": "Post", "system": "alpha", "response": "Hi"}\n'
STUDY_ENDPOINTS = [
    ("get", "/api/studies/pilot/"),
    ("patch", "/api/studies/pilot/"),
    ("put", "/api/studies/pilot/"),
    ("post", "/api/studies/pilot/outputs/"),
    ("get", "/api/studies/pilot/items/"),
    ("get", "/api/studies/pilot/systems/"),
    ("get", "/api/studies/pilot/responses/"),
]


def call(client, method, url):
    if method == "post":
        return client.post(url, {"file": SimpleUploadedFile("o.jsonl", ROW)}, format="multipart")
    if method in ("patch", "put"):
        return getattr(client, method)(url, {"title": "Hijacked"}, format="json")
    return client.get(url)


@pytest.mark.parametrize("method,url", STUDY_ENDPOINTS + [("get", "/api/studies/"), ("post", "/api/studies/")])
def test_anonymous_gets_401(study, method, url):
    reply = call(APIClient(), method, url)
    assert reply.status_code == 401
    assert reply["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("role", [None, "annotator"])
@pytest.mark.parametrize("method,url", STUDY_ENDPOINTS)
def test_other_users_cannot_see_or_touch_the_study(study, method, url, role):
    stranger = UserFactory(username="mallory")
    if role:
        services.add_member(study, stranger, role)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=stranger).key}")
    reply = call(client, method, url)
    assert reply.status_code == 404
    assert Study.objects.get(slug="pilot").title != "Hijacked"
    assert not study.items.exists()
    assert client.get("/api/studies/").json()["results"] == []


def test_collaborator_has_the_owners_access(study):
    colleague = UserFactory(username="cole")
    services.add_member(study, colleague, "researcher")
    client = APIClient()
    client.force_authenticate(colleague)
    assert call(client, "post", "/api/studies/pilot/outputs/").status_code == 201
    assert client.get("/api/studies/pilot/responses/").json()["count"] == 1


def test_token_auth_end_to_end(study, researcher):
    researcher.set_password("s3cret-pass")
    researcher.save()
    client = APIClient()
    token = client.post("/api/auth/token/", {"username": "rita", "password": "s3cret-pass"}).json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert call(client, "post", "/api/studies/pilot/outputs/").status_code == 201
    listing = client.get("/api/studies/").json()["results"]
    assert [(s["slug"], s["item_count"], s["system_count"]) for s in listing] == [("pilot", 1, 1)]
    responses = client.get("/api/studies/pilot/responses/").json()["results"]
    assert responses[0] | {"created_at": None, "updated_at": None} == {
        "item_id": "p1", "system": "alpha", "text": "Hi", "reasoning": "", "source": "uploaded",
        "created_at": None, "updated_at": None}


def test_create_and_update_a_study_over_the_api(api):
    reply = api.post("/api/studies/", {
        "slug": "coe", "title": "CoE", "criteria": [{"name": "fluency"}, {"name": "comforting"}],
        "responses_per_screen": 6, "annotations_per_item": 5, "allow_ties": True}, format="json")
    assert reply.status_code == 201, reply.content
    assert [c["name"] for c in reply.json()["criteria"]] == ["fluency", "comforting"]
    assert reply.json()["owner"] == "rita"
    duplicate = api.post("/api/studies/", {"slug": "coe", "title": "Again"}, format="json")
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["slug"]
    for page in ("new", "design"):  # /studies/new/ and /studies/design/ are pages of the site
        reserved = api.post("/api/studies/", {"slug": page, "title": "Hidden"}, format="json")
        assert reserved.status_code == 400 and "names a page of the site" in reserved.json()["slug"]
    patched = api.patch("/api/studies/coe/", {"responses_per_screen": 1}, format="json")
    assert patched.status_code == 400
    opened = api.patch("/api/studies/coe/", {"status": "open"}, format="json")
    assert opened.status_code == 400
    assert "cannot open yet" in opened.json()["status"]


def test_openapi_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    text = schema.content.decode()
    assert "/api/studies/{slug}/outputs/" in text
    assert "multipart/form-data" in text
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert "swagger-ui" in docs.content.decode()
    # Served from our own static files: no CDN is reachable for annotators or researchers.
    assert "cdn.jsdelivr" not in docs.content.decode()


def test_creating_a_study_needs_the_researcher_permission(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="crowd-worker"))
    reply = client.post("/api/studies/", {"slug": "x", "title": "X"}, format="json")
    assert reply.status_code == 403
    assert "annotations.add_study" in reply.json()["detail"]
    assert not Study.objects.filter(slug="x").exists()
