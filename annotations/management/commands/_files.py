"""What the file-loading commands share: finding the study, opening the file, reporting a refusal."""
from django.core.management.base import CommandError

from annotations.models import Study


def study_and_file(slug, path):
    """(study, open binary file) or a CommandError that says what to fix."""
    try:
        study = Study.objects.get(slug=slug)
    except Study.DoesNotExist:
        raise CommandError(f"no study '{slug}'; create it with create_study") from None
    try:
        return study, open(path, "rb")
    except OSError as exc:
        raise CommandError(f"cannot open {path}: {exc.strerror}") from None


def refuse(command, path, rejected):
    """Print every located problem of an UploadRejected, then stop with a non-zero exit."""
    for error in rejected.errors:
        command.stderr.write(f"{path}: {error}")
    raise CommandError(f"refused: {rejected.count}; nothing was written")
