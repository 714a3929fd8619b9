"""The Celery app. Without REDIS_URL, settings make every task run in process (eager)."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalsite.settings")

app = Celery("evalsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# Tasks of the sub-packages of the annotations app (autodiscovery looks only at each app's top).
app.autodiscover_tasks(["annotations.results"])
