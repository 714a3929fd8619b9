"""Builders for the annotators' side tests: an open study with items, systems and annotators."""
from django.contrib.auth import get_user_model

from annotations.studies import services
from annotations.models import Item, Membership, Response, Study, System


def open_study(owner, *, slug="rank", items=3, systems=5, responses_per_screen=5, annotations_per_item=2,
               allow_ties=True, criteria=("overall", "comforting"), system_names=None, lease_minutes=30):
    study = services.create_study(owner=owner, slug=slug, title=f"Study {slug}", criteria=criteria,
                                  responses_per_screen=responses_per_screen,
                                  annotations_per_item=annotations_per_item, allow_ties=allow_ties)
    names = system_names or [f"sys-{i}" for i in range(systems)]
    made = System.objects.bulk_create(System(study=study, name=name) for name in names)
    item_rows = Item.objects.bulk_create(
        Item(study=study, external_id=f"p{i}", prompt=f"Post number {i}: I feel tired.") for i in range(items))
    Response.objects.bulk_create(
        Response(item=item, system=system, text=f"Answer of {system.name} to {item.external_id}.")
        for item in item_rows for system in made)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.OPEN, lease_minutes=lease_minutes)
    study.refresh_from_db()
    return study


def annotators(study, n, prefix="ann"):
    """n annotator accounts (no password hashing: fast) that are members of the study."""
    User = get_user_model()
    users = [User(username=f"{prefix}{i}-{study.slug}", password="!") for i in range(n)]
    users = User.objects.bulk_create(users)
    Membership.objects.bulk_create(Membership(study=study, user=u, role=Membership.Role.ANNOTATOR) for u in users)
    return users


def full_ranking(assignment, criteria=None, ties=False):
    """A complete ranking of every shown handle (display order), per criterion."""
    criteria = criteria or [c.name for c in assignment.study.criteria.all()]
    order = list(assignment.shown_handles)
    groups = [order[:2]] + [[h] for h in order[2:]] if ties else [[h] for h in order]
    return {name: groups for name in criteria}
