"""Screens when systems outnumber slots (design.md §3): leased through the real services, every pair
of systems shares screens about equally often and every system sits in every slot about equally
often, far more evenly than a random draw; attention checks and items missing a system still get
full screens; the progress page reports both balances."""
import random

import pytest

from annotations.annotating import selectors
from annotations.annotating import services as assigning
from annotations.metrics import screen_balance
from annotations.models import Assignment, Item, Response, System
from tests.factories import annotators, full_ranking, open_study

pytestmark = pytest.mark.django_db


def spread(span):
    return span["max"] - span["min"]


def rank_rounds(study, users):
    """The annotators take turns, one item each, until nothing is left: round after round, as a
    study fills. Returns the screens (system names in display order) in the order they were leased."""
    names = dict(System.objects.filter(study=study).values_list("pk", "name"))
    system_of = dict(Response.objects.filter(item__study=study).values_list("pk", "system_id"))
    screens, waiting = [], list(users)
    while waiting:
        for user in list(waiting):
            assignment = assigning.next_assignment(study, user)
            if assignment is None:
                waiting.remove(user)
                continue
            screens.append(tuple(names[system_of[assignment.handles[h]]] for h in assignment.shown_handles))
            assigning.submit_ranking(assignment, full_ranking(assignment))
    return screens


def random_screens(names, k, n, seed):
    """Today's draw before the design: a random subset in a random order, per screen."""
    rng = random.Random(seed)
    return [tuple(rng.sample(names, min(k, len(names)))) for _ in range(n)]


@pytest.mark.parametrize("n_systems, k, n_items, per_item", [(6, 4, 30, 3), (8, 3, 28, 3)])
def test_pairs_and_slots_are_far_more_even_than_a_random_draw(researcher, n_systems, k, n_items, per_item):
    study = open_study(researcher, items=n_items, systems=n_systems, responses_per_screen=k,
                       annotations_per_item=per_item)
    names = [f"sys-{i}" for i in range(n_systems)]
    screens = rank_rounds(study, annotators(study, per_item + 2))
    assert len(screens) == n_items * per_item
    assert all(len(s) == k and len(set(s)) == k for s in screens)

    design = screen_balance(screens, names)
    first_round = screen_balance(screens[:n_items], names)
    # Random draws of the same size, several seeds: the design beats every one of them.
    randoms = [screen_balance(random_screens(names, k, len(screens), seed), names) for seed in range(5)]
    print(f"\nK={n_systems} k={k}: {len(screens)} screens; design pairs {design['pair_counts']}, "
          f"slots {design['slot_counts']}; first round pairs {first_round['pair_counts']}, "
          f"slots {first_round['slot_counts']}; random (5 seeds) pairs "
          f"{[(r['pair_counts']['min'], r['pair_counts']['max']) for r in randoms]}, slots "
          f"{[(r['slot_counts']['min'], r['slot_counts']['max']) for r in randoms]}")
    assert spread(design["pair_counts"]) <= 3 and spread(design["slot_counts"]) <= 3
    assert spread(first_round["pair_counts"]) <= 4 and spread(first_round["slot_counts"]) <= 4
    for rnd in randoms:
        assert spread(rnd["pair_counts"]) > 2 * spread(design["pair_counts"])
        assert spread(rnd["slot_counts"]) > 2 * spread(design["slot_counts"])
        assert rnd["pair_counts"]["ratio"] is None or rnd["pair_counts"]["ratio"] > design["pair_counts"]["ratio"]
        assert rnd["slot_counts"]["ratio"] is None or rnd["slot_counts"]["ratio"] > design["slot_counts"]["ratio"]


def test_when_every_system_fits_on_a_screen_each_sits_in_every_slot_about_equally_often(researcher):
    study = open_study(researcher, items=20, systems=4, responses_per_screen=4, annotations_per_item=2)
    screens = rank_rounds(study, annotators(study, 3))
    balance = screen_balance(screens, [f"sys-{i}" for i in range(4)])
    randoms = [screen_balance(random_screens([f"sys-{i}" for i in range(4)], 4, len(screens), seed))
               for seed in range(5)]
    print(f"\nK=4 k=4: design slots {balance['slot_counts']}; random (5 seeds) slots "
          f"{[(r['slot_counts']['min'], r['slot_counts']['max']) for r in randoms]}")
    assert all(sorted(s) == [f"sys-{i}" for i in range(4)] for s in screens)
    assert spread(balance["slot_counts"]) <= 1  # 40 screens: every system in every slot 10 times, give or take one
    assert all(spread(r["slot_counts"]) > spread(balance["slot_counts"]) for r in randoms)


def test_an_attention_checks_planted_response_is_always_shown(researcher):
    study = open_study(researcher, items=12, systems=6, responses_per_screen=3, annotations_per_item=3)
    for item in Item.objects.filter(study=study):
        assigning.set_attention_check(item, "sys-5", "last")
    screens = rank_rounds(study, annotators(study, 3))
    assert len(screens) == 36
    assert all("sys-5" in s and len(set(s)) == 3 for s in screens)
    # The check takes a random slot of the design's screen: it does not always sit in the same one.
    assert len({s.index("sys-5") for s in screens}) == 3


def test_an_item_missing_a_system_still_gets_a_full_screen(researcher):
    study = open_study(researcher, items=12, systems=6, responses_per_screen=4, annotations_per_item=3)
    gappy = list(Item.objects.filter(study=study).order_by("pk")[:6])
    Response.objects.filter(item__in=gappy[:3], system__name="sys-0").delete()
    Response.objects.filter(item__in=gappy[3:], system__name__in=["sys-1", "sys-2"]).delete()
    rank_rounds(study, annotators(study, 3))
    for assignment in Assignment.objects.filter(study=study):
        shown = [assignment.handles[h] for h in assignment.shown_handles]
        assert len(shown) == 4 and len(set(shown)) == 4
        assert set(shown) <= set(Response.objects.filter(item_id=assignment.item_id).values_list("pk", flat=True))
    # An item with fewer responses than slots shows all it has.
    Response.objects.filter(item=gappy[0], system__name__in=["sys-1", "sys-2", "sys-3"]).delete()
    design_screen = tuple(System.objects.filter(study=study, name__in=["sys-0", "sys-1", "sys-2", "sys-3"])
                          .values_list("pk", flat=True))
    order, handles, _texts = assigning.draw_display(gappy[0], 4, design_screen)
    assert len(order) == 2 and len(set(handles.values())) == 2


def test_the_design_is_fixed_per_study_secret_and_handles_stay_fresh(researcher, settings):
    one = open_study(researcher, slug="one", items=4, systems=6, responses_per_screen=4)
    two = open_study(researcher, slug="two", items=4, systems=6, responses_per_screen=4)

    def by_name(study):
        names = dict(System.objects.filter(study=study).values_list("pk", "name"))
        return [tuple(names[s] for s in screen) for screen in selectors.screen_plan(study).screens]

    first = by_name(one)
    selectors._screen_plans.clear()
    selectors._screen_designs.clear()
    assert by_name(one) == first  # the same in every process: deterministic from the study and the secret
    assert by_name(two) != first  # another study, another sequence
    settings.SECRET_KEY = "another-secret-" + "x" * 40
    selectors._screen_plans.clear()
    selectors._screen_designs.clear()
    assert by_name(one) != first  # nobody without the site's secret can work it out
    # Two leases of the same design screen still get fresh handles.
    a, b = annotators(one, 2)
    item = Item.objects.filter(study=one).order_by("pk").first()
    screen = selectors.screen_plan(one).screen(item.pk, 0)
    first_draw, second_draw = (assigning.draw_display(item, 4, screen) for _ in range(2))
    assert list(first_draw[1].values()) == list(second_draw[1].values())  # same responses, same slots
    assert not set(first_draw[0]) & set(second_draw[0])


def flat(html):
    return " ".join(html.split())


def test_the_progress_page_shows_both_balances(web, researcher):
    study = open_study(researcher, slug="bal", items=15, systems=6, responses_per_screen=4, annotations_per_item=2)
    page = flat(web.get("/studies/bal/progress/").content.decode())
    assert "Screen balance" in page and "No screens yet" in page
    rank_rounds(study, annotators(study, 2))
    open_now = assigning.next_assignment(study, annotators(study, 1, prefix="late")[0])
    assert open_now is None  # every item has its quota
    selectors.cache.delete(f"evalsite:screen-balance:{study.pk}")
    page = flat(web.get("/studies/bal/progress/").content.decode())
    names = dict(System.objects.filter(study=study).values_list("pk", "name"))
    system_of = dict(Response.objects.filter(item__study=study).values_list("pk", "system_id"))
    expected = screen_balance([[names[system_of[a.handles[h]]] for h in a.shown_handles]
                               for a in Assignment.objects.filter(study=study)], sorted(names.values()))
    pairs, slots = expected["pair_counts"], expected["slot_counts"]
    assert "Over 30 screens ranked or open now" in page
    assert (f"every pair of systems shared between <strong>{pairs['min']}</strong> and "
            f"<strong>{pairs['max']}</strong> screens") in page
    assert (f"every system sat in every slot between <strong>{slots['min']}</strong> and "
            f"<strong>{slots['max']}</strong> time") in page
    assert "(the most recent" not in page


def test_the_progress_page_when_every_system_fits_on_a_screen(web, researcher):
    study = open_study(researcher, slug="all", items=4, systems=3, responses_per_screen=4, annotations_per_item=1)
    (user,) = annotators(study, 1)
    assigning.next_assignment(study, user)  # a live lease counts too
    page = flat(web.get("/studies/all/progress/").content.decode())
    assert "Over 1 screen ranked or open now" in page
    assert "every screen shows all 3 systems, so every pair shares every screen" in page
    assert "every system sat in every slot between <strong>0</strong> and <strong>1</strong> time" in page
    assert "some system has not sat in some slot yet" in page
