"""python manage.py import_outputs SLUG FILE [--replace] [--format jsonl|csv|alpaca]"""
from django.core.management.base import BaseCommand, CommandError

from annotations import ingest, services
from annotations.models import Study


class Command(BaseCommand):
    help = "Load system outputs (JSONL, CSV or AlpacaEval JSON) into a study, all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("file")
        parser.add_argument("--format", choices=ingest.FORMATS, help="default: detected from the file")
        parser.add_argument("--replace", action="store_true",
                            help="overwrite responses that differ from the stored ones (old text kept)")

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
                summary = services.import_outputs(study, handle, filename=options["file"],
                                                  file_format=options["format"], replace=options["replace"])
            except services.UploadRejected as exc:
                for error in exc.errors:
                    self.stderr.write(f"{options['file']}: {error}")
                more = "+" if exc.truncated else ""
                raise CommandError(f"refused: {len(exc.errors)}{more} problem(s); nothing was written") from None
        if summary.changed:
            self.stdout.write(self.style.SUCCESS(
                f"Loaded {summary.rows} rows: {summary.responses_created} new responses, "
                f"{summary.responses_replaced} replaced, {summary.responses_unchanged} unchanged; "
                f"{summary.items_created} new items, {summary.systems_created} new systems."))
        else:
            self.stdout.write(f"Nothing changed: all {summary.rows} rows were already loaded.")
