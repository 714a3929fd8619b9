"""A generation job that fails (or is cancelled) before storing any response leaves an empty system
in the study: the study page shows it with a note, but coverage and the leaderboard count only
systems with responses, and the system joins both with its first response."""
import pytest

from annotations.models import Response
from generation import services
from tests.factories import load_rankings, outputs, random_rankings

pytestmark = pytest.mark.postgres

ITEMS = ("p1", "p2", "p3")
NOTE = "no responses yet: generating, or its job failed"


@pytest.fixture
def ranked(study):
    """3 items answered by 4 uploaded systems, ranked by two annotators."""
    outputs(study, items=ITEMS)
    load_rankings(study, random_rankings(ITEMS, ("rater-a", "rater-b"), seed=5))
    return study


def text(reply):
    assert reply.status_code == 200
    return " ".join(reply.content.decode().split())


def start(study, user, capture, execute=True):
    with capture(execute=execute):
        job = services.start_job(study, user=user, system_name="broken-run", backend="vllm",
                                 model="standin-model", strategy="coe-cbt", seed=3)
    job.refresh_from_db()
    return job


def test_a_job_whose_every_item_failed_stays_out_of_coverage_and_the_leaderboard(
        web, ranked, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    standin.script(400, 400, 400)
    job = start(ranked, researcher, django_capture_on_commit_callbacks)
    assert sorted(job.items.values_list("status", flat=True)) == ["failed"] * 3
    assert not Response.objects.filter(system=job.system).exists()

    page = text(web.get("/studies/pilot/"))
    # Still listed, with a note saying why it has nothing ...
    assert "<code>broken-run</code>" in page and NOTE in page
    # ... but the study is as complete as it was before the job.
    assert "<strong>4</strong> systems" in page and "<strong>12</strong> of 12 responses" in page
    assert '<span class="badge ok">complete</span>' in page

    board = text(web.get("/studies/pilot/leaderboard/"))
    assert "sysA" in board and "broken-run" not in board

    # Retried against a server that answers: its first responses bring it into both.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.retry_failed(job) == 3
    assert Response.objects.filter(system=job.system).count() == 3
    page = text(web.get("/studies/pilot/"))
    assert "<strong>5</strong> systems" in page and "<strong>15</strong> of 15 responses" in page
    assert NOTE not in page
    with django_capture_on_commit_callbacks(execute=True):
        web.get("/studies/pilot/leaderboard/")  # sees the cached leaderboard is stale, refreshes it
    assert "broken-run" in text(web.get("/studies/pilot/leaderboard/"))


def test_a_cancelled_job_leaves_the_study_complete_and_the_chance_level_unchanged(
        web, study, researcher, gen_settings, standin, django_capture_on_commit_callbacks):
    outputs(study, items=ITEMS, systems=("sysA", "sysB"))
    job = start(study, researcher, django_capture_on_commit_callbacks, execute=False)
    services.cancel_job(job)
    assert standin.count == 0

    page = text(web.get("/studies/pilot/"))
    assert "<code>broken-run</code>" in page and NOTE in page
    assert "<strong>2</strong> systems" in page and "<strong>6</strong> of 6 responses" in page
    assert "missing responses" not in page  # no item is listed as missing broken-run's answer

    # Before any ranking the leaderboard page tells the chance level of the screens to come:
    # two systems that can be ranked, so 1 in 2, not 1 in 3.
    board = text(web.get("/studies/pilot/leaderboard/"))
    assert "broken-run" not in board
    assert "With 2 systems and 2 responses per screen" in board
