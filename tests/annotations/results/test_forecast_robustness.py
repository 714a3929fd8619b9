"""The leaderboard's stop signal and forecast, how many rankings hold the leader up, and the tie
model: on the page, in the JSON download and the API, with the numbers the metrics functions give;
and a study set to stop when its question is answered stops leasing then, not before."""
import statistics

import pytest
from django.test import Client

from annotations import metrics
from annotations.annotating import services as annotating
from annotations.models import LeaderboardSnapshot, Study
from annotations.results import figures
from annotations.results import services as results
from tests.factories import SYSTEMS, annotators, load_rankings, open_study, outputs, random_rankings

pytestmark = pytest.mark.django_db

ITEMS = tuple(f"p{i}" for i in range(1, 25))
RATERS = ("rater-a", "rater-b", "rater-c")


@pytest.fixture
def ranked(study):
    outputs(study, items=ITEMS)
    # sysA a little above sysB: not yet separated after 24 items.
    records = random_rankings(ITEMS, RATERS, seed=1, strength={"sysA": 4, "sysB": 3.7, "sysC": 2.5, "sysD": 1})
    load_rankings(study, records)
    return [metrics.Annotation.from_record(r) for r in records]


def expected(annotations, study):
    board = metrics.leaderboard(annotations, sorted(SYSTEMS), rounds=figures.ROUNDS, seed=figures.SEED)
    first, second = [s["system"] for s in board["systems"][:2]]
    diffs = metrics.pair_differences(annotations, first, second, sorted(SYSTEMS))
    seconds = statistics.median(a.seconds for a in annotations)
    forecast = metrics.forecast(diffs, per_item=study.annotations_per_item, seconds_per_screen=seconds,
                                n_sims=figures.FORECAST_SIMS, max_more=figures.FORECAST_MAX_MORE,
                                seed=figures.SEED)
    sequence = metrics.confidence_sequence(diffs)
    return board, first, second, forecast, sequence


def test_the_leaderboard_shows_the_forecast_robustness_and_ties_with_the_metrics_numbers(web, study, ranked):
    board, first, second, forecast, sequence = expected(ranked, study)
    page = web.get("/studies/pilot/leaderboard/").content.decode()

    assert "Is #1 separated from #2?" in page
    assert "anytime-valid confidence sequence (betting, Waudby-Smith &amp; Ramdas 2024): you may look as often " \
           "as you like" in page
    assert sequence["stopped_at"] is None
    assert f'<strong>Not yet.</strong> <code class="system">{first}</code> leads' in page
    assert f"About {forecast['more_items']:,} more item" in page
    assert f"{forecast['rankings']:,} ranking" in page
    assert f"about {forecast['hours']:.1f} annotator-hours" in page
    low, high = forecast["more_items_range"]
    assert f"needed\n          {low:,}–" + (f"{high:,}" if high else f"more than {figures.FORECAST_MAX_MORE:,}") in page
    assert '<polygon points="' in page  # the confidence sequence's band

    rob = metrics.robustness(ranked, sorted(SYSTEMS))
    assert rob["count"] and rob["confirmed"]
    assert (f"stays first unless\n        <strong>{rob['count']} of {rob['n_rankings']} rankings "
            f"({rob['share'] * 100:.1f} %)</strong>") in page
    assert "confirmed</span> by recomputing" in page
    removed = rob["removed_rankings"][0]
    assert f"item <code>{removed['item']}</code> by <code>annotator-" in page  # pseudonyms, never raw labels
    assert "rater-a" not in page.split("How many rankings hold the leader up")[1].split("Ties as data")[0]

    ties = metrics.plackett_luce_ties(ranked, sorted(SYSTEMS))
    share = ties["tie_share_equal"]["2"]
    assert f"Two equally good responses are all tied about <strong>{share * 100:.0f} %</strong>" in page
    for s in board["systems"]:
        assert f"{s['pl_ties_worth']:.2f}" in page
    assert "PL with ties" in page


def test_the_json_download_and_the_api_carry_them_with_the_methods_named(web, api, study, ranked):
    board, first, second, forecast, sequence = expected(ranked, study)
    for doc in (web.get("/studies/pilot/leaderboard/download.json").json(),
                api.get("/api/studies/pilot/leaderboard/").json()):
        c = doc["criteria"]["overall"]
        signal = c["stop_signal"]
        assert signal["first"] == first and signal["second"] == second
        assert "Waudby-Smith" in signal["method"] and "anytime-valid" in signal["name"]
        assert signal["stopped_at"] == sequence["stopped_at"]
        assert signal["lower"] == pytest.approx(sequence["lower"][-1], abs=1e-5)
        assert signal["forecast"]["more_items"] == forecast["more_items"]
        assert signal["forecast"]["more_items_range"] == forecast["more_items_range"]
        assert "greedy" in c["robustness_method"] and c["robustness"]["count"] == board["robustness"]["count"]
        assert all(r["annotator"].startswith("annotator-") for r in c["robustness"]["removed"])
        assert "Turner" in c["tie_model"]
        assert c["tie_share_equal"]["2"] == pytest.approx(board["tie_share_equal"]["2"], rel=1e-5)
        assert c["systems"][0]["pl_ties_worth"] == pytest.approx(board["systems"][0]["pl_ties_worth"], rel=1e-5)
        assert doc["stop_when_answered"] is False and doc["question_answered"] is False


def test_the_public_page_names_no_annotator_in_the_removed_rankings(client, study, ranked):
    token = results.create_public_link(study)
    page = client.get(f"/public/leaderboard/{token}/").content.decode()
    section = page.split("How many rankings hold the leader up")[1].split("Ties as data")[0]
    assert "item <code>" in section and "annotator-" not in section and " by <code>" not in section


def test_the_forecast_partial_renders_for_the_progress_page(web, study, ranked):
    reply = web.get("/studies/pilot/leaderboard/forecast/")
    assert reply.status_code == 200
    assert "Is #1 separated from #2?" in reply.content.decode()


# --- Stopping when the question is answered ---------------------------------------------------------

def _separated_study(researcher, *, stop):
    """Two systems, 40 items, 1 ranking per item; sys-0 always first once ranked."""
    study = open_study(researcher, slug="stopper", items=40, systems=2, responses_per_screen=2,
                       annotations_per_item=1, criteria=("overall",))
    Study.objects.filter(pk=study.pk).update(stop_when_answered=stop)
    study.refresh_from_db()
    return study


def _rank_items(study, n, start=0):
    records = [{"item_id": f"p{i}", "annotator": "ext-1", "criterion": "overall",
                "ranking": [["sys-0"], ["sys-1"]], "seconds": 30.0} for i in range(start, start + n)]
    load_rankings(study, records)


def test_a_study_set_to_stop_leases_until_the_signal_fires_then_stops(researcher):
    study = _separated_study(researcher, stop=True)
    (annotator,) = annotators(study, 1)
    _rank_items(study, 5)  # 5 unanimous items do not yet separate them
    results.refresh(study)
    assert LeaderboardSnapshot.objects.get(study=study).data["question_answered"] is False
    first = annotating.next_assignment(study, annotator)
    assert first is not None  # not before

    _rank_items(study, 10, start=5)  # 15 unanimous items do
    results.refresh(study)
    snap = LeaderboardSnapshot.objects.get(study=study).data
    assert snap["question_answered"] is True
    assert snap["criteria"][0]["stop_signal"]["stopped_at"] == 10
    # The lease the annotator holds is resumed; no new item once it is done.
    assert annotating.next_assignment(study, annotator).pk == first.pk
    annotating.skip_assignment(first)
    assert annotating.next_assignment(study, annotator) is None


def test_an_annotator_of_a_stopped_study_is_told_so_and_not_offered_continue(researcher):
    study = _separated_study(researcher, stop=True)
    (annotator,) = annotators(study, 1)
    _rank_items(study, 15)
    results.refresh(study)
    browser = Client()
    browser.force_login(annotator)
    page = browser.get(f"/annotate/{study.slug}/done/").content.decode()
    assert "This study has stopped: its question is answered." in page
    assert ">Continue<" not in page
    home = browser.get("/").content.decode()
    assert f"/annotate/{study.slug}/work/" not in home  # the home page offers no Continue either


def test_without_the_setting_an_answered_study_keeps_leasing(researcher):
    study = _separated_study(researcher, stop=False)
    (annotator,) = annotators(study, 1)
    _rank_items(study, 15)
    results.refresh(study)
    assert LeaderboardSnapshot.objects.get(study=study).data["question_answered"] is True
    assert annotating.next_assignment(study, annotator) is not None


def test_submissions_refresh_the_signal_so_leasing_stops_without_anyone_looking(
        researcher, django_capture_on_commit_callbacks):
    study = _separated_study(researcher, stop=True)
    users = annotators(study, 20)
    leased = 0
    for user in users:
        with django_capture_on_commit_callbacks(execute=True):
            assignment = annotating.next_assignment(study, user)
            if assignment is None:
                break
            leased += 1
            groups = {"overall": [[h] for h in sorted(assignment.shown_handles,
                                                      key=lambda h: assignment.handles[h])]}
            annotating.submit_ranking(assignment, groups)
    # Response ids follow system order, so sys-0 is first every time: 10 items separate them.
    assert leased == 10
    assert LeaderboardSnapshot.objects.get(study=study).data["question_answered"] is True


def test_the_setting_is_changed_in_the_settings_form_and_the_api(web, api, study):
    assert 'name="stop_when_answered"' in web.get("/studies/pilot/edit/").content.decode()
    assert api.patch("/api/studies/pilot/", {"stop_when_answered": True}, format="json").status_code == 200
    study.refresh_from_db()
    assert study.stop_when_answered is True
