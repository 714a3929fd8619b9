"""Blindness: nothing an annotator's browser receives tells which system wrote a response.

A study whose systems have distinctive names, descriptions, reasoning and (deliberately large,
unmistakable) database keys; every annotator-facing page, fragment, header and API answer is
searched byte for byte. A second study with ordinary small keys is searched for any attribute
or JSON value that equals a system's or a response's key.
"""
import json
import re

import pytest
from django.test import Client

from annotations.annotating import services as assigning
from annotations.studies import services
from annotations.models import Assignment, Item, Membership, Response, Study, System
from tests.factories import annotators, full_ranking, open_study

pytestmark = pytest.mark.django_db

SYSTEMS = {  # name -> (key, description, reasoning)
    "ZEBRA-SYSTEM-7Q": (7340291, "Distinctive description QUOKKA-DESC-1", "REASONING-SECRET-AARDVARK"),
    "OKAPI-MODEL-3X": (7340292, "Distinctive description QUOKKA-DESC-2", "REASONING-SECRET-BADGER"),
    "NARWHAL-LLM-9K": (7340293, "Distinctive description QUOKKA-DESC-3", "REASONING-SECRET-CHEETAH"),
    "PANGOLIN-CoE-5W": (7340294, "Distinctive description QUOKKA-DESC-4", "REASONING-SECRET-DINGO"),
}
RESPONSE_KEYS = iter(range(9182700, 9182800))


@pytest.fixture
def distinctive(researcher):
    study = services.create_study(owner=researcher, slug="blind", title="Blind study",
                                  criteria=("overall", "comforting"), responses_per_screen=3,
                                  annotations_per_item=4, allow_ties=True,
                                  instructions="Rank the **responses**.")
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN, completion_code="DONE-123",
                                             completion_url="https://example.org/finished")
    study.refresh_from_db()
    systems = [System.objects.create(pk=key, study=study, name=name, description=description)
               for name, (key, description, _reasoning) in SYSTEMS.items()]
    for i in range(3):
        item = Item.objects.create(study=study, external_id=f"post-{i}", prompt=f"Post {i}: I cannot sleep.",
                                   metadata={"language": "en"})
        for system in systems:
            Response.objects.create(pk=next(RESPONSE_KEYS), item=item, system=system,
                                    text=f"A kind reply number {i} with some words.",
                                    reasoning=SYSTEMS[system.name][2],
                                    metadata={"generator": system.name, "temperature": 0.7})
    return study


def forbidden_strings(study):
    strings = set()
    for system in System.objects.filter(study=study):
        strings |= {system.name, system.name.lower(), system.description, str(system.pk)}
    for response in Response.objects.filter(item__study=study):
        strings |= {str(response.pk), response.reasoning, json.dumps(response.metadata)}
    strings |= {"QUOKKA", "REASONING-SECRET", "ZEBRA", "OKAPI", "NARWHAL", "PANGOLIN"}
    return strings


def everything_sent(reply):
    """The body and every header (cookies included), as one string."""
    headers = "\n".join(f"{k}: {v}" for k, v in reply.headers.items())
    cookies = "\n".join(morsel.OutputString() for morsel in reply.cookies.values())
    return "\n".join([headers, cookies, reply.content.decode("utf-8", "replace")])


def annotator_replies(study, client, user):
    """Every annotator-facing page and fragment, in the order an annotator meets them."""
    htmx = {"HTTP_HX_REQUEST": "true"}
    replies = [client.get("/"), client.get(f"/annotate/{study.slug}/"),
               client.get(f"/annotate/{study.slug}/work/"), client.get(f"/annotate/{study.slug}/work/", **htmx)]
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    replies += [client.get(f"/annotate/{study.slug}/"), client.get(f"/annotate/{study.slug}/work/")]
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    current = Assignment.objects.get(annotator=user, status="active")
    base = f"/annotate/{study.slug}/{current.public_id}"
    replies.append(client.post(f"{base}/submit/", {"rank-overall": "[]"}, **htmx))  # refused in place
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(current).items()}
    replies.append(client.post(f"{base}/submit/", data, **htmx))  # accepted: the next screen
    replies.append(client.post(f"{base}/submit/", data, **htmx))  # replayed
    replies.append(client.post(f"{base}/submit/", data))  # replayed without htmx
    current = Assignment.objects.get(annotator=user, status="active")
    replies.append(client.post(f"/annotate/{study.slug}/{current.public_id}/flag/", {"flag_reason": ""}, **htmx))
    replies.append(client.post(f"/annotate/{study.slug}/{current.public_id}/skip/", **htmx))
    current = Assignment.objects.get(annotator=user, status="active")
    data = {f"rank-{c}": json.dumps(g) for c, g in full_ranking(current).items()}
    replies.append(client.post(f"/annotate/{study.slug}/{current.public_id}/submit/", data, **htmx))
    replies.append(client.get(f"/annotate/{study.slug}/done/"))
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    replies.append(client.get(f"/annotate/{study.slug}/done/"))
    # The API and the researchers' pages answer an annotator without a word about the study.
    for url in ["/api/studies/", f"/api/studies/{study.slug}/", f"/api/studies/{study.slug}/systems/",
                f"/api/studies/{study.slug}/responses/", f"/api/studies/{study.slug}/items/",
                f"/studies/{study.slug}/", f"/studies/{study.slug}/progress/",
                f"/studies/{study.slug}/items/post-0/", f"/studies/{study.slug}/leaderboard/"]:
        replies.append(client.get(url))
    return replies


def test_nothing_sent_to_an_annotator_names_or_keys_a_system(distinctive):
    (user,) = annotators(distinctive, 1)
    client = Client()
    client.force_login(user)
    replies = annotator_replies(distinctive, client, user)
    assert len(replies) > 20
    assert any("Response A" in r.content.decode() for r in replies)  # the screens really rendered
    assert any("回复 A" in r.content.decode() for r in replies)  # ... in Chinese too
    forbidden = forbidden_strings(distinctive)
    for reply in replies:
        sent = everything_sent(reply)
        found = sorted(s for s in forbidden if s and s in sent)
        assert not found, f"{reply.request['PATH_INFO']} sent {found}"


def test_the_join_flow_says_nothing_about_systems_either(distinctive):
    client = Client()
    replies = [client.get(f"/join/{distinctive.invite_token}/")]
    replies.append(client.post(f"/join/{distinctive.invite_token}/", {
        "username": "newcomer", "password1": "a-long-pass-phrase-9", "password2": "a-long-pass-phrase-9"},
        follow=True))
    Study.objects.filter(pk=distinctive.pk).update(crowd_platform="prolific")
    replies.append(Client().get(f"/join/{distinctive.invite_token}/?PROLIFIC_PID=5f1a2b3c4d5e6f7a8b9c0d1e"
                                "&STUDY_ID=abc&SESSION_ID=xyz", follow=True))
    forbidden = forbidden_strings(distinctive)
    for reply in replies:
        assert reply.status_code == 200
        sent = everything_sent(reply)
        assert not [s for s in forbidden if s and s in sent]


# Where a key would sit if a page leaked one: an attribute whose whole value is a number (data-*,
# value, id, name, for), a number as a path segment of a link or form target, or a JSON value.
ATTRIBUTE_NUMBER = re.compile(r"""\s(?:data-[\w-]+|value|id|name|for)=["'](\d+)["']""")
URL_NUMBER = re.compile(r"""(?:href|action|formaction|hx-get|hx-post|src)=["'][^"']*/(\d+)/""")
JSON_NUMBER = re.compile(r""""[\w-]+"\s*:\s*"?(\d+)\b""")


def numbers_where_keys_would_sit(text):
    return set(ATTRIBUTE_NUMBER.findall(text)) | set(URL_NUMBER.findall(text)) | set(JSON_NUMBER.findall(text))


def test_the_key_patterns_would_catch_a_leak():
    leaky = '<li data-response="12" value="7"><a href="/r/34/">x</a></li><script>{"system": 56}</script>'
    assert numbers_where_keys_would_sit(leaky) == {"12", "7", "34", "56"}


def test_no_attribute_or_json_value_equals_a_system_or_response_key(researcher):
    """With ordinary small keys, a key would hide among other numbers: look where it would sit."""
    study = open_study(researcher, items=4, systems=5, responses_per_screen=5, annotations_per_item=3)
    keys = {str(pk) for pk in System.objects.filter(study=study).values_list("pk", flat=True)}
    keys |= {str(pk) for pk in Response.objects.filter(item__study=study).values_list("pk", flat=True)}
    (user,) = annotators(study, 1)
    client = Client()
    client.force_login(user)
    for reply in annotator_replies(study, client, user):
        sent = everything_sent(reply)
        numbers = numbers_where_keys_would_sit(sent)
        assert not numbers & keys, f"{reply.request['PATH_INFO']}: {numbers & keys}"


def test_the_page_shows_responses_in_the_assignments_random_order_under_random_handles(researcher):
    study = open_study(researcher, items=1, systems=5, responses_per_screen=5, annotations_per_item=30)
    texts = dict(Response.objects.values_list("pk", "text"))
    firsts, seen_handles = set(), set()
    for user in annotators(study, 30):
        client = Client()
        client.force_login(user)
        page = client.get(f"/annotate/{study.slug}/work/").content.decode()
        current = Assignment.objects.get(annotator=user)
        positions = [page.index(f'data-handle="{h}"') for h in current.shown_handles]
        assert positions == sorted(positions)  # the tray lists them in display order, A first
        shown = [texts[current.handles[h]] for h in current.shown_handles]
        card_positions = [page.index(f"{text}</div>") for text in shown]
        assert card_positions == sorted(card_positions)  # cards too
        firsts.add(current.handles[current.shown_handles[0]])
        assert not seen_handles & set(current.shown_handles)
        seen_handles |= set(current.shown_handles)
    assert len(firsts) == 5  # every response has been first for someone: no order by key


def test_a_researcher_who_is_not_a_member_sees_no_annotator_screen(distinctive):
    (user,) = annotators(distinctive, 1)
    outsider = Client()
    outsider.force_login(distinctive.owner)  # a researcher of the study, not an annotator of it
    assert Membership.objects.get(user=distinctive.owner).role == "researcher"
    assert outsider.get(f"/annotate/{distinctive.slug}/work/").status_code == 404
    current = assigning.next_assignment(distinctive, user)
    assert outsider.post(f"/annotate/{distinctive.slug}/{current.public_id}/submit/").status_code == 404
