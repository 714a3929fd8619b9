"""python manage.py create_study SLUG --title ... --owner USER [--criteria a,b] ..."""
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotations.studies import services


class Command(BaseCommand):
    help = "Create a study owned by an existing user."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--title", required=True)
        parser.add_argument("--owner", required=True, help="username of the researcher who owns it")
        parser.add_argument("--criteria", default="overall",
                            help="comma-separated criterion names (default: overall)")
        parser.add_argument("--instructions-file", help="a Markdown file with the annotators' instructions")
        parser.add_argument("--responses-per-screen", type=int, default=4)
        parser.add_argument("--annotations-per-item", type=int, default=3)
        parser.add_argument("--allow-ties", action="store_true")

    def handle(self, *args, **options):
        User = get_user_model()
        try:
            owner = User.objects.get(username=options["owner"])
        except User.DoesNotExist:
            raise CommandError(f"no user '{options['owner']}'; create one with "
                               "'.venv/bin/python manage.py createsuperuser' first") from None
        instructions = ""
        if options["instructions_file"]:
            try:
                with open(options["instructions_file"], encoding="utf-8") as handle:
                    instructions = handle.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"cannot read {options['instructions_file']}: {exc}") from None
        try:
            study = services.create_study(
                owner=owner, slug=options["slug"], title=options["title"],
                criteria=options["criteria"], instructions=instructions,
                responses_per_screen=options["responses_per_screen"],
                annotations_per_item=options["annotations_per_item"], allow_ties=options["allow_ties"],
            )
        except services.StudyInvalid as exc:
            raise CommandError("; ".join(f"{field}: {message}" for field, message in exc.errors.items())) from None
        self.stdout.write(self.style.SUCCESS(f"Created study '{study.slug}' with criteria "
                                             f"{', '.join(c.name for c in study.criteria.all())}."))
