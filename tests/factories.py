"""Test data, one place for it: factory_boy factories for single rows (studies are made through the
service so they get criteria and membership), and builders for whole studies, outputs and rankings."""
import io
import json
import random

import factory
from django.contrib.auth import get_user_model

from annotations.models import Item, Membership, Response, Study, System
from annotations.results import services as results
from annotations.studies import services

SYSTEMS = ("sysA", "sysB", "sysC", "sysD")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-only")


class StudyFactory(factory.Factory):
    class Meta:
        model = dict

    owner = factory.SubFactory(UserFactory)
    slug = factory.Sequence(lambda n: f"study-{n}")
    title = factory.LazyAttribute(lambda o: f"Study {o.slug}")
    criteria = ("overall",)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.create_study(**kwargs)

    _build = _create


class SystemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = System

    name = factory.Sequence(lambda n: f"system-{n}")


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    external_id = factory.Sequence(lambda n: f"p{n}")
    prompt = factory.Faker("paragraph")


class ResponseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Response

    item = factory.SubFactory(ItemFactory)
    system = factory.SubFactory(SystemFactory, study=factory.SelfAttribute("..item.study"))
    text = factory.Faker("paragraph")


def open_study(owner, *, slug="rank", items=3, systems=5, responses_per_screen=5, annotations_per_item=2,
               allow_ties=True, criteria=("overall", "comforting"), system_names=None, lease_minutes=30):
    study = StudyFactory(owner=owner, slug=slug, criteria=criteria, responses_per_screen=responses_per_screen,
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


def outputs(study, items=("p1", "p2", "p3"), systems=SYSTEMS, missing=()):
    """Upload one response per (item, system), except the (item, system) pairs in `missing`."""
    lines = [json.dumps({"item_id": item, "prompt": f"Post {item}", "system": system,
                         "response": f"{system} answers {item}"})
             for item in items for system in systems if (item, system) not in missing]
    services.import_outputs(study, io.BytesIO("\n".join(lines).encode()), filename="o.jsonl")


def ranking(**overrides):
    base = {"item_id": "p1", "annotator": "a1", "criterion": "overall",
            "ranking": [["sysA"], ["sysC", "sysD"], ["sysB"]],
            "display_order": ["sysB", "sysA", "sysC", "sysD"], "seconds": 41.5}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def jsonl(*records):
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in records).encode() + b"\n"


def random_rankings(items, annotators, systems=SYSTEMS, criteria=("overall",), seed=0, strength=None,
                    attention=None):
    """Plausible rankings: systems earlier in `systems` tend to rank higher; some ties."""
    rng = random.Random(seed)
    strength = strength or {s: len(systems) - i for i, s in enumerate(systems)}
    records = []
    for item in items:
        for criterion in criteria:
            for annotator in annotators:
                draws = {s: strength[s] + rng.gauss(0, 1.5) for s in systems}
                order = sorted(systems, key=lambda s: -draws[s])
                groups = [[order[0]]]
                for prev, cur in zip(order, order[1:]):
                    if draws[prev] - draws[cur] < 0.2:
                        groups[-1].append(cur)
                    else:
                        groups.append([cur])
                shown = list(systems)
                rng.shuffle(shown)
                record = {"item_id": item, "annotator": annotator, "criterion": criterion, "ranking": groups,
                          "display_order": shown, "seconds": round(rng.uniform(20, 120), 1)}
                if attention and annotator in attention:
                    record["attention_passed"] = attention[annotator]
                records.append(record)
    return records


def load_rankings(study, records):
    return results.import_rankings(study, io.BytesIO(jsonl(*records)), filename="r.jsonl")
