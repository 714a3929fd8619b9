"""Generation pages: researchers only (others get 404, anonymous users the login page), the form's
errors in place, the job page's progress and its htmx partial, and the actions.
"""
import pytest
from django.urls import reverse

from annotations.studies import services as study_services
from annotations.models import Membership, Response
from generation import services
from generation.models import GenerationJob
from tests.factories import UserFactory

pytestmark = pytest.mark.postgres


@pytest.fixture
def job(study_with_items, researcher, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        return services.start_job(study_with_items, user=researcher, system_name="coe-made",
                                  model="some-model", strategy="coe-cbt", seed=4)


def test_study_page_links_to_generation(web, study_with_items):
    page = web.get(reverse("study_detail", args=[study_with_items.slug]))
    assert reverse("generate", args=[study_with_items.slug]) in page.content.decode()


def test_access_is_for_the_study_researchers_only(client, study_with_items, job, other_researcher):
    urls = [reverse("generate", args=["gen"]), reverse("generation_job", args=["gen", job.id])]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]
    client.force_login(other_researcher)
    for url in urls:
        assert client.get(url).status_code == 404
    annotator = UserFactory(username="ann")
    study_services.add_member(study_with_items, annotator, Membership.Role.ANNOTATOR)
    client.force_login(annotator)
    for url in urls:
        assert client.get(url).status_code == 404
    response = client.post(reverse("generation_job_action", args=["gen", job.id, "cancel"]))
    assert response.status_code == 404
    job.refresh_from_db()
    assert job.status == "queued"


def test_form_lists_strategies_and_says_when_no_server_answers(web, study_with_items, settings):
    settings.VLLM_BASE_URLS = ["http://127.0.0.1:9/v1"]
    page = web.get(reverse("generate", args=["gen"]))
    html = page.content.decode()
    assert page.status_code == 200
    for label in ("Direct answer", "Chain of Empathy: CBT", "Empathy-R1: four-level reasoning",
                  "Custom template"):
        assert label in html
    assert "No vLLM server listed its models" in html
    assert "No generation jobs yet." in html


def test_form_lists_the_served_models(web, study_with_items, settings, standin):
    settings.VLLM_BASE_URLS = [standin.url]
    html = web.get(reverse("generate", args=["gen"])).content.decode()
    assert '<option value="standin-model">' in html
    # The only model served is filled in: nothing to choose.
    assert 'name="model" id="id_model" value="standin-model"' in html


def test_form_errors_show_in_place_and_nothing_starts(web, study_with_items, settings):
    settings.VLLM_BASE_URLS = ["http://127.0.0.1:9/v1"]
    response = web.post(reverse("generate", args=["gen"]), {
        "system_name": "mine", "backend": "vllm", "model": "m", "strategy": "custom",
        "template": "Reply to this.", "reasoning_open": "<think>", "reasoning_close": "</think>",
        "answer_open": "<answer>", "answer_close": "</answer>", "temperature": "0.7",
        "top_p": "2", "max_tokens": "64",
    })
    html = response.content.decode()
    assert response.status_code == 400
    assert "The template must contain {post}" in html
    assert "top_p must be above 0 and at most 1" in html
    assert 'value="Reply to this."' not in html and "Reply to this.</textarea>" in html  # kept
    response = web.post(reverse("generate", args=["gen"]), {
        "system_name": "", "backend": "vllm", "model": "m", "strategy": "base",
        "temperature": "0.7", "top_p": "1", "max_tokens": "0"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "Ensure this value is greater than or equal to 1." in html  # max_tokens
    assert "This field is required." in html  # the system's name
    assert not GenerationJob.objects.exists()


def test_starting_a_job_redirects_to_its_page(web, study_with_items, settings, standin,
                                              gen_settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = web.post(reverse("generate", args=["gen"]), {
            "system_name": "made-here", "backend": "vllm", "model": "standin-model",
            "strategy": "empathy-r1", "temperature": "0.2", "top_p": "0.9",
            "max_tokens": "128", "seed": "",
        })
    job = GenerationJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("generation_job", args=["gen", job.id])
    job.refresh_from_db()
    assert job.status == "completed" and job.seed is None and job.strategy == "empathy-r1"
    assert Response.objects.filter(system__name="made-here").count() == 10


def test_job_page_shows_progress_polls_while_live_and_lists_failures(web, job):
    items = list(job.items.order_by("id"))
    GenerationJob.objects.filter(id=job.id).update(status="running")
    items[0].status, items[0].error = "done", ""
    items[1].status, items[1].error = "failed", "HTTP 400 from http://x: bad request"
    items[2].status, items[2].error, items[2].raw_output = "unparsed", "no <answer> tag", "<b>raw</b>"
    for g in items[:3]:
        g.save()
    html = web.get(reverse("generation_job", args=["gen", job.id])).content.decode()
    assert 'hx-trigger="every 1500ms"' in html
    assert "<strong>1</strong> done" in html and "<strong>7</strong> remaining of 10" in html
    assert "HTTP 400 from http://x: bad request" in html
    assert "no &lt;answer&gt; tag" in html and "&lt;b&gt;raw&lt;/b&gt;" in html  # escaped
    assert "Responses per second" in html and "Time left" in html
    assert ">Cancel</button>" in html
    partial = web.get(reverse("generation_job", args=["gen", job.id]), HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert body.lstrip().startswith("<section") and "<html" not in body
    assert 'id="job-progress"' in body


def test_a_finished_job_stops_polling_and_offers_retry(web, job):
    GenerationJob.objects.filter(id=job.id).update(status="completed")
    job.items.filter(id=job.items.first().id).update(status="failed", error="HTTP 404: nope")
    html = web.get(reverse("generation_job", args=["gen", job.id])).content.decode()
    assert "hx-trigger" not in html
    assert "Retry failed (1)" in html and ">Cancel</button>" not in html


def test_cancel_and_an_action_that_does_not_apply(web, job):
    url = reverse("generation_job_action", args=["gen", job.id, "cancel"])
    response = web.post(url)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    page = web.post(url, follow=True).content.decode()
    assert "only a queued or running job can be cancelled" in page
    assert web.get(url).status_code == 405


def test_job_page_says_what_the_model_gave_parse_rate_tokens_and_seconds(web, job):
    items = list(job.items.order_by("id"))
    for g, status in zip(items[:4], ("done", "done", "done", "unparsed")):
        g.status, g.attempts, g.prompt_tokens, g.completion_tokens, g.seconds = status, 1, 300, 120, 2.5
        g.save()
    html = web.get(reverse("generation_job", args=["gen", job.id])).content.decode()
    assert "What the model gave" in html
    assert "3 of 4 (75 %)" in html
    assert "1,200 / 480" in html and "(120 out per output)" in html
    assert "10.0" in html  # seconds in requests


def test_job_page_has_no_model_record_before_any_output(web, job):
    assert "What the model gave" not in web.get(reverse("generation_job", args=["gen", job.id])).content.decode()
