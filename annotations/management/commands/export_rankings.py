"""python manage.py export_rankings SLUG [-o FILE]: every ranking as JSONL, annotators pseudonymised."""
from django.core.management.base import BaseCommand, CommandError

from annotations.formatting import counted
from annotations.results import exports
from annotations.models import Study


class Command(BaseCommand):
    help = ("Write a study's rankings in the import format (annotators named annotator-1, annotator-2, ...); "
            "importing them into a study with the same items and systems reproduces its leaderboard.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("-o", "--output", help="file to write (default: standard output)")

    def handle(self, *args, **options):
        try:
            study = Study.objects.get(slug=options["slug"])
        except Study.DoesNotExist:
            raise CommandError(f"no study '{options['slug']}'") from None
        lines = exports.export_rankings(study)
        if not options["output"]:
            for line in lines:
                self.stdout.write(line.decode("utf-8"), ending="")
            return
        try:
            with open(options["output"], "wb") as handle:
                count = 0
                for line in lines:
                    handle.write(line)
                    count += 1
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc.strerror}") from None
        self.stderr.write(f"Wrote {counted(count, 'ranking')} of '{study.slug}' to {options['output']}.")
