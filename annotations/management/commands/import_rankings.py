"""python manage.py import_rankings SLUG FILE: rankings collected elsewhere (JSONL), all or nothing."""
from django.core.management.base import BaseCommand, CommandError

from annotations import services
from annotations.models import Study


class Command(BaseCommand):
    help = ("Import rankings (JSONL: item_id, annotator, criterion, ranking as tie groups of system names, "
            "optional display_order, seconds, attention_passed) into a study, all or nothing.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")

    def handle(self, *args, **options):
        try:
            study = Study.objects.get(slug=options["slug"])
        except Study.DoesNotExist:
            raise CommandError(f"no study '{options['slug']}'; create it with create_study") from None
        try:
            handle = open(options["file"], "rb")
        except OSError as exc:
            raise CommandError(f"cannot open {options['file']}: {exc.strerror}") from None
        with handle:
            try:
                summary = services.import_rankings(study, handle, filename=options["file"])
            except services.UploadRejected as exc:
                for error in exc.errors:
                    self.stderr.write(f"{options['file']}: {error}")
                more = "+" if exc.truncated else ""
                raise CommandError(f"refused: {len(exc.errors)}{more} problem(s); nothing was written") from None
        if summary.changed:
            self.stdout.write(self.style.SUCCESS(
                f"Imported {summary.rankings_created} rankings from {summary.annotators} annotators; "
                f"{summary.rankings_unchanged} were already stored."))
        else:
            self.stdout.write(f"Nothing changed: all {summary.rows} rankings were already stored.")
