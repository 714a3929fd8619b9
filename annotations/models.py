"""Studies and what they evaluate: items (prompts), systems, their responses, and who takes part.

Vocabulary (docs/metrics.md): a study has items and systems; a response is one system's
answer to one item; annotators rank the responses of an item under each of the study's criteria.
"""
import re
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Now
from django.urls import reverse


class StudyQuerySet(models.QuerySet):
    def for_researcher(self, user):
        """Studies this user may manage (owner or collaborator)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(
            memberships__user=user, memberships__role=Membership.Role.RESEARCHER
        ).distinct()


def _token():
    return secrets.token_urlsafe(24)


class CrowdPlatform(models.TextChoices):
    NONE = "none", "None (invited or logged-in annotators)"
    PROLIFIC = "prolific", "Prolific"
    MTURK = "mturk", "MTurk-style external id"


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
    # Posts and responses are shown exactly as uploaded unless the researcher turns this on; then
    # they are rendered as Markdown through the same sanitiser as the instructions.
    render_markdown = models.BooleanField(
        default=False, db_default=False, verbose_name="Render Markdown in posts and responses",
        help_text="Off: texts are shown exactly as uploaded. On: headings, lists and emphasis are "
                  "rendered (sanitised, no raw HTML).")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    # An assignment not submitted within this many minutes returns its item to the pool.
    lease_minutes = models.PositiveIntegerField(default=30)
    # Annotators join through /join/<invite_token>/; replacing the token revokes old links.
    invite_token = models.CharField(max_length=64, unique=True, default=_token)
    # A public, read-only leaderboard link exists while this is set; clearing it revokes the link.
    public_token = models.CharField(max_length=64, unique=True, null=True, blank=True)
    crowd_platform = models.CharField(max_length=16, choices=CrowdPlatform.choices,
                                      default=CrowdPlatform.NONE)
    completion_code = models.CharField(max_length=100, blank=True,
                                       help_text="Shown to crowd annotators when they finish.")
    completion_url = models.URLField(blank=True, help_text="Where crowd annotators are sent when they finish.")
    crowd_max_participants = models.PositiveIntegerField(
        null=True, blank=True, verbose_name="Most crowd participants",
        help_text="The study admits no more crowd participants than this; empty for no limit.")
    # Leasing stops once the leaderboard's stop signal says every criterion has separated its #1
    # from its #2 (an anytime-valid confidence sequence, so stopping on it stays honest).
    stop_when_answered = models.BooleanField(
        default=False, db_default=False, verbose_name="Stop when the question is answered",
        help_text="Stop giving annotators new items once every criterion has separated its #1 from "
                  "its #2 (anytime-valid confidence sequence on the leaderboard).")
    # The leaderboard may leave out annotators whose attention-check pass rate is below this.
    attention_min_pass_rate = models.FloatField(default=1.0)
    # Bumped by figures_changed(): a leaderboard computed before a bump is stale.
    figures_version = models.PositiveIntegerField(default=0, db_default=0)
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
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="study_lease_at_least_a_minute"),
            models.CheckConstraint(
                condition=Q(attention_min_pass_rate__gte=0) & Q(attention_min_pass_rate__lte=1),
                name="study_attention_rate_fraction",
            ),
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

    def figures_changed(self):
        """The one place that marks the study's leaderboards stale.

        A cached leaderboard is fresh while the study's ranking count, newest ranking id and
        figures_version are those it was computed from. A ranking stored or imported changes the
        first two by itself; everything else that changes what a leaderboard shows without adding
        a ranking (an attention check set or cleared and its rankings rescored, the pass rate that
        excludes annotators changed) calls this, in the same transaction as its write.
        """
        Study.objects.filter(pk=self.pk).update(figures_version=models.F("figures_version") + 1)
        self.refresh_from_db(fields=["figures_version"])


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
    # When a (crowd) annotator finished the study; crowd ids are on CrowdParticipant.
    completed_at = models.DateTimeField(null=True, blank=True)
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


class CrowdParticipant(models.Model):
    """A crowd platform's participant in one study, and the account the crowd link made for them.

    The crowd link logs in only the user of such a record, never an account made any other way.
    A Prolific id names one person across studies, so later studies reuse the first record's user.
    The first browser to open the link gets a secret cookie; only its hash is kept here, and a
    researcher's release clears it so that the participant may continue in another browser.
    """

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="crowd_participants")
    platform = models.CharField(max_length=16, choices=CrowdPlatform.choices)
    participant_id = models.CharField(max_length=100)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="crowd_participants")
    session_id = models.CharField(max_length=200, blank=True)  # the platform's session or assignment id
    secret_hash = models.CharField(max_length=64, blank=True)  # empty: the next browser claims it
    created_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "platform", "participant_id"],
                                    name="crowd_participant_unique_id"),
            models.UniqueConstraint(fields=["study", "user"], name="crowd_participant_unique_user"),
            models.CheckConstraint(condition=Q(platform__in=["prolific", "mturk"]),
                                   name="crowd_participant_platform_valid"),
            models.CheckConstraint(condition=~Q(participant_id=""), name="crowd_participant_id_not_empty"),
        ]
        indexes = [models.Index(fields=["platform", "participant_id"], name="crowd_participant_by_id")]

    def __str__(self):
        return f"{self.platform}:{self.participant_id} in {self.study_id}"


class AttentionRule(models.TextChoices):
    """What an attention check expects of the planted response in every ranking of its item."""

    NOT_FIRST = "not_first", "must not be ranked first (a planted poor response)"
    LAST = "last", "must be ranked last, alone"
    FIRST = "first", "must be ranked first, alone (a planted good response)"


class Item(models.Model):
    """A prompt, e.g. a help-seeker's post, identified by the study's own external id."""

    # No separate index: the unique (study, external_id) index serves look-ups by study.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="items", db_index=False)
    external_id = models.CharField(max_length=200)
    prompt = models.TextField()
    metadata = models.JSONField(default=dict, blank=True)
    # An attention check: this system's response is planted, and every ranking should meet the rule.
    # RESTRICT: the planted system cannot be deleted alone, but goes with its study.
    attention_system = models.ForeignKey("System", on_delete=models.RESTRICT, null=True, blank=True,
                                         related_name="attention_checks")
    attention_rule = models.CharField(max_length=16, choices=AttentionRule.choices, blank=True, db_default="")
    # How many of the site's assignments of this item were submitted (imports do not count). Kept by
    # annotations/assignment.py, so that the next item (fewest first) comes off an index, not a count;
    # it only orders the queue: quotas are always counted from the assignments themselves.
    rankings_done = models.PositiveIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        indexes = [models.Index(fields=["study", "rankings_done", "id"], name="item_next_for_annotation")]
        constraints = [
            models.UniqueConstraint(fields=["study", "external_id"], name="item_unique_external_id"),
            models.CheckConstraint(condition=~Q(external_id=""), name="item_external_id_not_empty"),
            models.CheckConstraint(condition=~Q(prompt=""), name="item_prompt_not_empty"),
            models.CheckConstraint(
                condition=(Q(attention_system__isnull=True, attention_rule="")
                           | Q(attention_system__isnull=False, attention_rule__in=AttentionRule.values)),
                name="item_attention_check_whole"),
        ]

    def __str__(self):
        return self.external_id

    @property
    def is_attention_check(self):
        return self.attention_system_id is not None


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

    # No separate index on item: the unique (item, system) index serves it, and large uploads
    # pay for every index on every row.
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="responses", db_index=False)
    system = models.ForeignKey(System, on_delete=models.CASCADE, related_name="responses")
    text = models.TextField()
    # Database defaults too, so that an upload's COPY sends only the columns that vary per row.
    reasoning = models.TextField(blank=True, db_default="")
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.UPLOADED,
                              db_default=Source.UPLOADED)
    metadata = models.JSONField(default=dict, blank=True, db_default=Value({}, models.JSONField()))
    created_at = models.DateTimeField(auto_now_add=True, db_default=Now())
    updated_at = models.DateTimeField(auto_now=True, db_default=Now())

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


class AssignmentStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    SUBMITTED = "submitted", "Submitted"
    EXPIRED = "expired", "Expired"
    SKIPPED = "skipped", "Skipped"
    FLAGGED = "flagged", "Flagged"


class AssignmentQuerySet(models.QuerySet):
    def live(self, now):
        """Assignments that count against their item's quota (see Assignment.LIVE_SQL)."""
        return self.filter(Q(status=AssignmentStatus.SUBMITTED)
                           | Q(status=AssignmentStatus.ACTIVE, expires_at__gt=now))


class Assignment(models.Model):
    """One item leased to one annotator. Responses are addressed by opaque per-assignment handles."""

    Status = AssignmentStatus
    # The rule of which assignments count against an item's quota: submitted ones, and leases not
    # yet expired. The same rule as AssignmentQuerySet.live, for the plain SQL of the annotation
    # path, on an assignment aliased `a` and with the moment as its one parameter.
    LIVE_SQL = (f"(a.status = '{AssignmentStatus.SUBMITTED}' OR "
                f"(a.status = '{AssignmentStatus.ACTIVE}' AND a.expires_at > %s))")

    objects = AssignmentQuerySet.as_manager()

    # The foreign keys need no index of their own: each leads one of the indexes below. Every
    # index costs each submission a write, and annotators submit all day.
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="assignments", db_index=False)
    # Annotator URLs name an assignment by this random token, never by its database key. Unique
    # through a constraint, which (unlike unique=True) adds no second, pattern-matching index.
    public_id = models.CharField(max_length=32, default=_token)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="assignments", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                  related_name="assignments", db_index=False)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    # The handles (fresh random tokens per assignment) in the order the screen shows them, and
    # handle -> response id. The order and the subset follow the study's balanced screen design
    # (annotating.services). A ranking's display_order is the same order as system ids.
    shown_handles = models.JSONField(default=list)
    handles = models.JSONField(default=dict)
    leased_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    first_shown_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    # How the screen was read, as the browser reported it on submit: system id (as a string) ->
    # {"seconds": time on screen, "opened": bool, "read_to_end": bool}. Exported with each ranking
    # of the screen; never shown to other annotators.
    reading = models.JSONField(default=dict, blank=True, db_default=Value({}, models.JSONField()))
    rationale = models.TextField(blank=True)
    flag_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            # An annotator never sees an item twice.
            models.UniqueConstraint(fields=["item", "annotator"], name="assignment_unique_item_annotator"),
            models.UniqueConstraint(fields=["public_id"], name="assignment_unique_public_id"),
            models.CheckConstraint(
                condition=Q(status__in=AssignmentStatus.values), name="assignment_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["study", "status"]),
            models.Index(fields=["item", "status"]),
            models.Index(fields=["annotator", "status"]),
        ]

    def __str__(self):
        return f"{self.item} for {self.annotator} ({self.status})"


class Ranking(models.Model):
    """One annotator's weak ordering of one item's responses under one criterion.

    `ranking` holds system ids in tie groups, best first ([[3], [5, 7], [4]]); `display_order` the
    system ids in the order they were shown. Rankings are never updated or deleted by the site.
    """

    class Source(models.TextChoices):
        ANNOTATED = "annotated", "Annotated here"
        IMPORTED = "imported", "Imported"

    # How a site annotator is named in rankings and statistics; imports may not use such names.
    SITE_LABEL = re.compile(r"user-\d+")

    @staticmethod
    def site_label(user_id):
        return f"user-{user_id}"

    # study, item and assignment lead indexes of the constraints below, so need none of their own.
    study = models.ForeignKey(Study, on_delete=models.PROTECT, related_name="rankings", db_index=False)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="rankings", db_index=False)
    criterion = models.ForeignKey(Criterion, on_delete=models.PROTECT, related_name="rankings")
    assignment = models.ForeignKey(Assignment, on_delete=models.PROTECT, null=True, blank=True,
                                   related_name="rankings", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True,
                                  related_name="rankings")
    # Who ranked, as the statistics see it: a pseudonym for site annotators, the given name for imports.
    annotator_label = models.CharField(max_length=200)
    ranking = models.JSONField()
    display_order = models.JSONField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices, default=Source.ANNOTATED)
    # For attention-check items: whether this ranking met the check's expectation.
    attention_passed = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["item", "criterion", "annotator_label"],
                                    name="ranking_unique_per_annotator"),
            models.UniqueConstraint(fields=["assignment", "criterion"], condition=Q(assignment__isnull=False),
                                    name="ranking_unique_per_assignment"),
            models.CheckConstraint(condition=Q(source__in=["annotated", "imported"]), name="ranking_source_valid"),
            models.CheckConstraint(condition=~Q(annotator_label=""), name="ranking_annotator_label_not_empty"),
        ]
        indexes = [models.Index(fields=["study", "criterion"])]

    def __str__(self):
        return f"{self.annotator_label} on {self.item} ({self.criterion})"


class Pseudonyms(dict):
    """Annotator label -> 'annotator-1', 'annotator-2', ... numbered in the order the labels are first
    looked up. Looked up in the order of each annotator's first ranking, the names are stable over
    time (rankings are only ever added); every download and export names annotators so."""

    def __missing__(self, label):
        alias = self[label] = f"annotator-{len(self) + 1}"
        return alias


def pseudonyms(labels):
    names = Pseudonyms()
    for label in labels:
        names[label]  # noqa: B018 - looking a label up numbers it
    return names


class LeaderboardSnapshot(models.Model):
    """A computed leaderboard, cached so that no page waits on the bootstrap."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="leaderboards")
    # The options it was computed with, e.g. "unit=annotation;exclude=attention".
    options = models.CharField(max_length=200)
    # How many rankings (and the newest id) it saw: stale when rankings change.
    rankings_count = models.PositiveIntegerField(default=0)
    last_ranking_id = models.BigIntegerField(default=0)
    # The study's figures_version it was computed at.
    figures_version = models.PositiveIntegerField(default=0, db_default=0)
    data = models.JSONField()
    computed_at = models.DateTimeField(auto_now=True)
    seconds = models.FloatField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "options"], name="leaderboard_unique_options"),
        ]


class FileJob(models.Model):
    """A long file operation run by a worker instead of in the web request: a large upload of
    outputs, a large rankings import, or a rankings export. The uploaded file (or the written
    export) is kept in `file`; the job can run again from it after a worker restart."""

    class Kind(models.TextChoices):
        OUTPUTS_UPLOAD = "outputs_upload", "Upload of system outputs"
        RANKINGS_IMPORT = "rankings_import", "Import of rankings"
        RANKINGS_EXPORT = "rankings_export", "Export of rankings"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="file_jobs")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="file_jobs")
    # The uploaded file for uploads and imports; the written file for exports.
    file = models.FileField(upload_to="file-jobs/%Y/%m/", max_length=255, blank=True)
    filename = models.CharField(max_length=255, blank=True)  # as the researcher named it, or the download name
    size = models.BigIntegerField(default=0)  # bytes of the file
    options = models.JSONField(default=dict, blank=True)  # format, replace, ...
    # Done: the summary (as the synchronous API answers it). Failed: the refusal or error, located.
    result = models.JSONField(default=dict, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=["queued", "running", "done", "failed"]),
                                   name="filejob_status_valid"),
            models.CheckConstraint(condition=Q(kind__in=["outputs_upload", "rankings_import", "rankings_export"]),
                                   name="filejob_kind_valid"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.study.slug} ({self.status})"
