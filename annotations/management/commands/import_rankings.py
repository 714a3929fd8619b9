"""python manage.py import_rankings SLUG FILE: rankings collected elsewhere (JSONL), all or nothing."""
from django.core.management.base import BaseCommand

from annotations.formatting import all_of, counted
from annotations.results import services

from ._files import refuse, study_and_file


class Command(BaseCommand):
    help = ("Import rankings (JSONL: item_id, annotator, criterion, ranking as tie groups of system names, "
            "optional display_order, seconds, attention_passed) into a study, all or nothing.")

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")

    def handle(self, *args, **options):
        study, handle = study_and_file(options["slug"], options["file"])
        with handle:
            try:
                summary = services.import_rankings(study, handle, filename=options["file"])
            except services.UploadRejected as exc:
                refuse(self, options["file"], exc)
        if summary.changed:
            self.stdout.write(self.style.SUCCESS(
                f"Imported {counted(summary.rankings_created, 'ranking')} from "
                f"{counted(summary.annotators, 'annotator')}; {summary.rankings_unchanged:,} already stored."))
        else:
            self.stdout.write(f"Nothing changed: {all_of(summary.rows, 'ranking')} already stored.")
