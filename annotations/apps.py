from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "annotations"
    verbose_name = "Studies and annotations"

    def ready(self):
        # Connect the receivers that turn "refresh these leaderboards" and "a file job is queued"
        # into Celery tasks; importing the modules also registers their tasks with the worker.
        from .results import tasks  # noqa: F401
        from .studies import tasks as studies_tasks  # noqa: F401
