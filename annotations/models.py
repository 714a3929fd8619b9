"""Studies and what they evaluate: items (prompts), systems, their responses, and who takes part.

Vocabulary (shared/docs/metrics.md): a study has items and systems; a response is one system's
answer to one item; annotators rank the responses of an item under each of the study's criteria.
"""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse


class StudyQuerySet(models.QuerySet):
    def for_researcher(self, user):
        """Studies this user may manage (owner or collaborator)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(
            memberships__user=user, memberships__role=Membership.Role.RESEARCHER
        ).distinct()


class Study(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Shown to annotators; Markdown.")
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_studies"
    )
    responses_per_screen = models.PositiveSmallIntegerField(default=4)
    annotations_per_item = models.PositiveSmallIntegerField(default=3)
    allow_ties = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = StudyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(
                condition=Q(responses_per_screen__gte=2) & Q(responses_per_screen__lte=12),
                name="study_responses_per_screen_2_to_12",
            ),
            models.CheckConstraint(
                condition=Q(annotations_per_item__gte=1) & Q(annotations_per_item__lte=100),
                name="study_annotations_per_item_1_to_100",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "open", "closed"]), name="study_status_valid"
            ),
            models.CheckConstraint(condition=~Q(slug=""), name="study_slug_not_empty"),
            models.CheckConstraint(condition=~Q(title=""), name="study_title_not_empty"),
        ]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("study_detail", args=[self.slug])

    def is_researcher(self, user):
        return (
            user.is_authenticated
            and self.memberships.filter(user=user, role=Membership.Role.RESEARCHER).exists()
        )


class Criterion(models.Model):
    """One question the annotators rank by (e.g. `overall`, or `comforting`)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="criteria")
    name = models.SlugField(max_length=64)
    label = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["study", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="criterion_unique_name"),
            models.CheckConstraint(condition=~Q(name=""), name="criterion_name_not_empty"),
        ]
        verbose_name_plural = "criteria"

    def __str__(self):
        return self.label or self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        RESEARCHER = "researcher", "Researcher"
        ANNOTATOR = "annotator", "Annotator"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="study_memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="membership_unique_user"),
            models.CheckConstraint(
                condition=Q(role__in=["researcher", "annotator"]), name="membership_role_valid"
            ),
        ]

    def __str__(self):
        return f"{self.user} ({self.role}) in {self.study.slug}"


class Item(models.Model):
    """A prompt, e.g. a help-seeker's post, identified by the study's own external id."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items")
    external_id = models.CharField(max_length=200)
    prompt = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="item_unique_external_id"),
            models.CheckConstraint(condition=~Q(external_id=""), name="item_external_id_not_empty"),
            models.CheckConstraint(condition=~Q(prompt=""), name="item_prompt_not_empty"),
        ]

    def __str__(self):
        return self.external_id


class System(models.Model):
    """A model, or a model with a prompting strategy. Its name never reaches an annotator."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="systems")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "name"]
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="system_unique_name"),
            models.CheckConstraint(condition=~Q(name=""), name="system_name_not_empty"),
        ]

    def __str__(self):
        return self.name


class Response(models.Model):
    """One system's answer to one item. `reasoning` is for researchers only, never annotators."""

    class Source(models.TextChoices):
        UPLOADED = "uploaded", "Uploaded"
        GENERATED = "generated", "Generated"

    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="responses")
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    reasoning = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOADED)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["item", "system"]
        constraints = [
            models.UniqueConstraint(fields=["item", "system"], name="response_unique_item_system"),
            models.CheckConstraint(condition=~Q(text=""), name="response_text_not_empty"),
            models.CheckConstraint(
                condition=Q(source__in=["uploaded", "generated"]), name="response_source_valid"
            ),
        ]

    def __str__(self):
        return f"{self.system} on {self.item}"


class ResponseRevision(models.Model):
    """The text a response had before an upload replaced it: nothing is silently lost."""

    response = models.ForeignKey(Response, on_delete=models.CASCADE, related_name="revisions")
    text = models.TextField()
    reasoning = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Response.Source.choices)
    replaced_at = models.DateTimeField(auto_now_add=True)
    replaced_by = models.ForeignKey("OutputUpload", on_delete=models.SET_NULL, null=True)

    class Meta:
        ordering = ["response", "-replaced_at"]


class OutputUpload(models.Model):
    """The record of one accepted upload of system outputs."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    filename = models.CharField(max_length=255, blank=True)
    file_format = models.CharField(max_length=16)
    replace = models.BooleanField(default=False)
    rows = models.PositiveIntegerField(default=0)
    responses_created = models.PositiveIntegerField(default=0)
    responses_replaced = models.PositiveIntegerField(default=0)
    responses_unchanged = models.PositiveIntegerField(default=0)
    items_created = models.PositiveIntegerField(default=0)
    systems_created = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"{self.filename or 'upload'} into {self.study.slug}"
