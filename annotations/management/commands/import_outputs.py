"""python manage.py import_outputs SLUG FILE [--replace] [--format jsonl|csv|alpaca]"""
from django.core.management.base import BaseCommand

from annotations.formatting import all_of, counted
from annotations.studies import ingest, services

from ._files import refuse, study_and_file


class Command(BaseCommand):
    help = "Load system outputs (JSONL, CSV or AlpacaEval JSON) into a study, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--format", choices=ingest.FORMATS, help="default: detected from the file")
        parser.add_argument("--replace", action="store_true",
                            help="overwrite responses that differ from the stored ones (old text kept)")

    def handle(self, *args, **options):
        study, handle = study_and_file(options["slug"], options["file"])
        with handle:
            try:
                summary = services.import_outputs(study, handle, filename=options["file"],
                                                  file_format=options["format"], replace=options["replace"])
            except services.UploadRejected as exc:
                refuse(self, options["file"], exc)
        if summary.changed:
            self.stdout.write(self.style.SUCCESS(
                f"Loaded {counted(summary.rows, 'row')}: {counted(summary.responses_created, 'new response')}, "
                f"{summary.responses_replaced:,} replaced, {summary.responses_unchanged:,} unchanged; "
                f"{counted(summary.items_created, 'new item')}, {counted(summary.systems_created, 'new system')}."))
        else:
            self.stdout.write(f"Nothing changed: {all_of(summary.rows, 'row')} already loaded.")
