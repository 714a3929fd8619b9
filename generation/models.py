"""Generation jobs: a system's responses produced by a model with a prompting strategy.

A job fans out over the study's items; each GenerationItem records one item's outcome, so that
progress, failures and retries are read from rows rather than counters that could drift.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q



class GenerationJob(models.Model):
    class Backend(models.TextChoices):
        VLLM = "vllm", "vLLM server (OpenAI-compatible)"
        VLLM_OFFLINE = "vllm-offline", "vLLM in the worker (GPU)"
        TRANSFORMERS = "transformers", "Hugging Face transformers (local, small models)"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"

    study = models.ForeignKey("annotations.Study", on_delete=models.CASCADE, related_name="generation_jobs")
    system = models.ForeignKey("annotations.System", on_delete=models.PROTECT, related_name="generation_jobs")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    backend = models.CharField(max_length=32, choices=Backend.choices, default=Backend.VLLM)
    model = models.CharField(max_length=300, help_text="Served model name, or a local model path.")
    strategy = models.CharField(max_length=64)
    strategy_options = models.JSONField(default=dict, blank=True)
    temperature = models.FloatField(default=0.7)
    top_p = models.FloatField(default=1.0)
    max_tokens = models.PositiveIntegerField(default=1024)
    seed = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    # Why the whole job stopped (e.g. the server refused the model), as opposed to one item failing.
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "cancelled", "completed", "failed"]),
                name="generation_job_status_valid",
            ),
            models.CheckConstraint(condition=Q(temperature__gte=0), name="generation_job_temperature"),
            models.CheckConstraint(condition=Q(top_p__gt=0) & Q(top_p__lte=1), name="generation_job_top_p"),
            models.CheckConstraint(condition=Q(max_tokens__gte=1), name="generation_job_max_tokens"),
        ]

    def __str__(self):
        return f"{self.system} on {self.study.slug} ({self.status})"


class GenerationItem(models.Model):
    """One item's outcome within a job."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"  # the request failed (error says why)
        UNPARSED = "unparsed", "Output did not parse"  # kept in raw_output, never shown to annotators

    job = models.ForeignKey(GenerationJob, on_delete=models.CASCADE, related_name="items")
    item = models.ForeignKey("annotations.Item", on_delete=models.CASCADE, related_name="generation_items")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    raw_output = models.TextField(blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["job", "id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "item"], name="generation_item_unique"),
            models.CheckConstraint(condition=Q(status__in=["pending", "done", "failed", "unparsed"]),
                                   name="generation_item_status_valid"),
        ]
        indexes = [models.Index(fields=["job", "status"])]

    def __str__(self):
        return f"{self.item} in job {self.job_id} ({self.status})"
