"""python manage.py export_leaderboard SLUG --format json|csv|md|tex [-o FILE] [--unit item] [--include-all]"""
from django.core.management.base import BaseCommand, CommandError

from annotations.results import exports, services
from annotations.results.figures import UNIT_LABELS, Options
from annotations.models import Study


class Command(BaseCommand):
    help = ("Write a study's leaderboard (computed now if the cached one is out of date) as JSON, CSV, "
            "Markdown or LaTeX.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("--format", choices=list(exports.FORMATS), default="json")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")
        parser.add_argument("--unit", choices=list(UNIT_LABELS), default="annotation",
                            help="per annotation (each ranking once, the default) or per item")
        parser.add_argument("--include-all", action="store_true",
                            help="keep annotators who failed the attention checks (left out by default)")

    def handle(self, *args, **options):
        try:
            study = Study.objects.get(slug=options["slug"])
        except Study.DoesNotExist:
            raise CommandError(f"no study '{options['slug']}'") from None
        choice = Options(unit=options["unit"], exclude_attention=not options["include_all"])
        body, _, _ = exports.render(study, services.fresh(study, choice), options["format"])
        if not options["output"]:
            self.stdout.write(body.decode("utf-8"), ending="")
            return
        try:
            with open(options["output"], "wb") as handle:
                handle.write(body)
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc.strerror}") from None
        self.stderr.write(f"Wrote the {options['format']} leaderboard of '{study.slug}' to {options['output']}.")
