"""Generation pages found wanting on a tour (issue 12): the warning about unreachable vLLM servers
said its first half twice, and a failed job claimed "Time left: finished"."""
import re

import pytest
from django.urls import reverse

from generation import services
from generation.models import GenerationJob

pytestmark = pytest.mark.postgres


@pytest.fixture
def job(study_with_items, researcher, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        return services.start_job(study_with_items, user=researcher, system_name="coe-made",
                                  model="some-model", strategy="coe-cbt", seed=4)


def time_left(html):
    return re.search(r"<dt>Time left</dt><dd>(.*?)</dd>", html, re.S).group(1).strip()


def test_the_no_server_warning_says_it_once(web, study_with_items, settings):
    settings.VLLM_BASE_URLS = ["http://127.0.0.1:9/v1"]
    html = web.get(reverse("generate", args=["gen"])).content.decode()
    assert html.lower().count("no vllm server listed its models") == 1
    assert re.search(r"No vLLM server listed its models: http://127.0.0.1:9\S*: unreachable", html), \
        re.findall(r"class=\"warn\"[^<]*", html)


def test_a_failed_job_does_not_say_it_finished(web, job):
    services.fail_job(job, "vLLM server not ready")
    html = web.get(reverse("generation_job", args=["gen", job.id])).content.decode()
    assert "The job stopped: vLLM server not ready" in html
    assert time_left(html) == "– (failed with 10 remaining)"


def test_a_cancelled_job_and_a_completed_one(web, job):
    services.cancel_job(job)
    assert time_left(web.get(reverse("generation_job", args=["gen", job.id])).content.decode()) == \
        "– (cancelled with 10 remaining)"
    job.items.update(status="done")
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.COMPLETED)
    assert time_left(web.get(reverse("generation_job", args=["gen", job.id])).content.decode()) == "finished"
