"""python manage.py demo: demo accounts and a demo study, loaded through the normal upload path.

Safe to run again: accounts and the study are reused, and re-importing the same outputs is a no-op.
"""
import json
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotations.formatting import counted
from annotations.results import services as results
from annotations.studies import services
from annotations.models import Membership, Study

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"
SLUG = "empathy-demo"
ACCOUNTS = {
    # username: (password, role) -- for a local demo only; the command refuses to run with DEBUG off.
    "researcher": ("researcher-demo", Membership.Role.RESEARCHER),
    "annotator": ("annotator-demo", Membership.Role.ANNOTATOR),
}
INSTRUCTIONS = """\
You will read posts in which people describe something that troubles them, each followed by
several responses written by different assistants.

**Rank the responses from best to worst** for each question:

- **Overall**: which response would you most want to receive if you had written the post?
- **Comforting**: which response best acknowledges the feelings and makes the person feel heard?

Judge only the text. Responses are shown in a random order and their authors are hidden.
If a response is broken or harmful, flag the item.
"""


class Command(BaseCommand):
    help = "Create the demo researcher and annotator and the demo study (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="run even with DEBUG off")

    def handle(self, *args, **options):
        if not settings.DEBUG and not options["force"]:
            raise CommandError("the demo creates accounts with published passwords; it runs only with "
                               "DEBUG on (or pass --force on a machine nobody else can reach)")
        call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            users = self._accounts()
            study = self._study(users["researcher"])
            for username, (_, role) in ACCOUNTS.items():
                services.add_member(study, users[username], role)
            with open(DEMO_DIR / "outputs.jsonl", "rb") as handle:
                summary = services.import_outputs(study, handle, filename="outputs.jsonl")
            descriptions = json.loads((DEMO_DIR / "systems.json").read_text(encoding="utf-8"))
            services.describe_systems(study, descriptions)
            if study.status == Study.Status.DRAFT:
                services.set_study_status(study, Study.Status.OPEN)
            # Rankings by four external raters, so that the leaderboard is full on first start.
            with open(DEMO_DIR / "rankings.jsonl", "rb") as handle:
                rankings = results.import_rankings(study, handle, filename="rankings.jsonl")
        loaded = "loaded" if summary.changed else "already loaded"
        self.stdout.write(self.style.SUCCESS(
            f"Demo study '{study.title}': {study.items.count()} posts, {study.systems.count()} systems ({loaded})."))
        self.stdout.write(
            f"Demo rankings: {rankings.rows} by {counted(rankings.annotators, 'rater')} "
            f"({'imported' if rankings.changed else 'already imported'}).")
        url = settings.SITE_URL.rstrip("/")
        self.stdout.write(f"\n  Open {url}/ and log in as:")
        for username, (password, role) in ACCOUNTS.items():
            self.stdout.write(f"    {role:<11} {username} / {password}")
        self.stdout.write(f"  Study page: {url}/studies/{SLUG}/   API docs: {url}/api/docs/")
        self.stdout.write(f"  Leaderboard: {url}/studies/{SLUG}/leaderboard/\n")

    def _accounts(self):
        User = get_user_model()
        users = {}
        for username, (password, _) in ACCOUNTS.items():
            user, created = User.objects.get_or_create(username=username)
            if created:
                user.set_password(password)
                user.save()
            users[username] = user
        # The demo researcher may create studies of their own; the annotator may not.
        users["researcher"].user_permissions.add(Permission.objects.get(
            content_type__app_label="annotations", codename="add_study"))
        return users

    def _study(self, owner):
        study = Study.objects.filter(slug=SLUG).first()
        if study:
            return study
        return services.create_study(
            owner=owner, slug=SLUG, title="Empathy in long support posts (demo)",
            instructions=INSTRUCTIONS,
            criteria=[{"name": "overall", "label": "Overall"},
                      {"name": "comforting", "label": "Comforting",
                       "description": "Acknowledges the feelings; the person feels heard."}],
            responses_per_screen=5, annotations_per_item=3, allow_ties=True,
        )
