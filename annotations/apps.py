from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Studies and annotations"

    def ready(self):
        # Connects the receiver that turns "refresh these leaderboards" into a Celery task.
        from .results import tasks  # noqa: F401
