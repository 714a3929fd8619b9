"""Login throttling (django-axes): after 5 wrong passwords for one username from one address,
the login page and the API token endpoint refuse that pair, even with the right password,
and say so; other people and the crowd join links keep working."""
import pytest
from django.test import Client

from tests.factories import UserFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

PASSWORD = "pw-for-tests-only"


@pytest.fixture
def user():
    return UserFactory(username="alice")


def wrong_logins(client, count, username="alice"):
    for _ in range(count):
        client.post("/login/", {"username": username, "password": "guess"})


def test_the_right_password_is_refused_after_five_wrong_ones(user):
    client = Client()
    wrong_logins(client, 4)
    page = client.post("/login/", {"username": "alice", "password": "guess"})
    assert page.status_code == 429
    text = page.content.decode()
    assert "Too many failed logins" in text and "Try again in 15 minutes" in text

    refused = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.content.decode()
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302  # still sent to the login page


def test_four_wrong_passwords_then_the_right_one_logs_in(user):
    client = Client()
    wrong_logins(client, 4)
    page = client.post("/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 302 and page["Location"] == "/"
    # a success starts the count again
    client.post("/logout/")
    wrong_logins(client, 4)
    assert client.post("/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_a_lockout_is_per_username_and_address(user):
    UserFactory(username="bob")
    wrong_logins(Client(), 6)
    # the same username from another address, and another username from the same address
    elsewhere = Client(REMOTE_ADDR="10.0.0.9").post("/login/", {"username": "alice", "password": PASSWORD})
    assert elsewhere.status_code == 302
    bob = Client().post("/login/", {"username": "bob", "password": PASSWORD})
    assert bob.status_code == 302


def test_the_api_token_endpoint_is_throttled_with_a_json_429(user):
    client = Client()
    for _ in range(4):
        wrong = client.post("/api/auth/token/", {"username": "alice", "password": "guess"})
        assert wrong.status_code == 400
    locked = client.post("/api/auth/token/", {"username": "alice", "password": "guess"})
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.json()["detail"]
    assert int(locked["Retry-After"]) == 15 * 60

    refused = client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                          content_type="application/json")
    assert refused.status_code == 429
    assert "right password" in refused.json()["detail"]


def test_the_api_token_endpoint_still_hands_out_tokens(user):
    reply = Client().post("/api/auth/token/", {"username": "alice", "password": PASSWORD},
                          content_type="application/json")
    assert reply.status_code == 200 and len(reply.json()["token"]) == 40


def test_failures_on_the_web_form_count_for_the_api_too(user):
    client = Client()
    wrong_logins(client, 5)
    assert client.post("/api/auth/token/", {"username": "alice", "password": PASSWORD}).status_code == 429


def test_the_lockout_settings_come_from_the_environment(monkeypatch):
    import importlib

    from evalsite import settings as site_settings
    monkeypatch.setenv("LOGIN_FAILURE_LIMIT", "3")
    monkeypatch.setenv("LOGIN_LOCKOUT_MINUTES", "60")
    try:
        reloaded = importlib.reload(site_settings)
        assert reloaded.AXES_FAILURE_LIMIT == 3
        assert reloaded.AXES_COOLOFF_TIME.total_seconds() == 3600
    finally:
        monkeypatch.undo()
        importlib.reload(site_settings)
