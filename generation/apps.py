from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "generation"
    verbose_name = "Response generation"

    def ready(self):
        # Connects the receiver that turns a queued job into its Celery task.
        from . import tasks  # noqa: F401
