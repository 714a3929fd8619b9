"""API representations of the loading area, and of a refused upload (which every import shares);
writes go through services."""
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.models import Criterion, FileJob, Item, Response, Study, System

from . import designer, file_jobs


class CriterionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Criterion
        fields = ["name", "label", "description"]
        extra_kwargs = {"label": {"required": False}, "name": {"validators": []}}


class StudySerializer(serializers.ModelSerializer):
    criteria = CriterionSerializer(many=True, required=False)
    owner = serializers.CharField(source="owner.get_username", read_only=True)
    item_count = serializers.IntegerField(source="n_items", read_only=True)
    system_count = serializers.IntegerField(source="n_systems", read_only=True)

    class Meta:
        model = Study
        fields = ["slug", "title", "instructions", "criteria", "responses_per_screen",
                  "annotations_per_item", "allow_ties", "render_markdown", "attention_min_pass_rate", "status", "owner",
                  "item_count", "system_count", "created_at"]
        read_only_fields = ["owner", "created_at", "attention_min_pass_rate"]
        extra_kwargs = {"slug": {"validators": []}}


class StudyUpdateSerializer(serializers.ModelSerializer):
    """After creation the slug and criteria stay fixed: rankings will refer to them."""

    class Meta:
        model = Study
        fields = ["title", "instructions", "responses_per_screen", "annotations_per_item",
                  "allow_ties", "render_markdown", "lease_minutes", "attention_min_pass_rate",
                  "stop_when_answered", "status"]


class SystemSerializer(serializers.ModelSerializer):
    response_count = serializers.IntegerField(source="n_responses", read_only=True)

    class Meta:
        model = System
        fields = ["name", "description", "response_count"]
        read_only_fields = ["name"]


class ItemSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="external_id")
    response_count = serializers.IntegerField(source="n_responses", read_only=True)

    class Meta:
        model = Item
        fields = ["item_id", "prompt", "metadata", "response_count"]


class ResponseSerializer(serializers.ModelSerializer):
    item_id = serializers.CharField(source="item.external_id")
    system = serializers.CharField(source="system.name")

    class Meta:
        model = Response
        fields = ["item_id", "system", "text", "reasoning", "source", "created_at", "updated_at"]


class OutputUploadSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="JSONL, CSV or AlpacaEval model_outputs.json")
    format = serializers.ChoiceField(choices=["jsonl", "csv", "alpaca"], required=False,
                                     help_text="Detected from the file name and content when left out.")
    replace = serializers.BooleanField(default=False,
                                       help_text="Overwrite responses that differ from the stored ones.")


class ImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    responses_created = serializers.IntegerField()
    responses_replaced = serializers.IntegerField()
    responses_unchanged = serializers.IntegerField()
    items_created = serializers.IntegerField()
    systems_created = serializers.IntegerField()
    file_format = serializers.CharField()
    upload_id = serializers.IntegerField(allow_null=True)


class RowErrorSerializer(serializers.Serializer):
    line = serializers.IntegerField(allow_null=True)
    column = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)
    message = serializers.CharField()
    text = serializers.CharField()


class UploadRejectedSerializer(serializers.Serializer):
    detail = serializers.CharField()
    errors = RowErrorSerializer(many=True)
    truncated = serializers.BooleanField()


class FileJobSerializer(serializers.ModelSerializer):
    """A background file job: a large upload or import, or a prepared export."""

    progress = serializers.SerializerMethodField(help_text="From 0 to 1; 1 once done.")
    result = serializers.JSONField(read_only=True, help_text=(
        "Done: the summary the synchronous request answers (an upload's or import's counts; an "
        "export's rows, size and file name). Failed: the refusal, as a 400 answer would give it "
        "(detail, located errors, truncated) with its http_status. Queued: `waiting` while Redis "
        "cannot take the task."))
    url = serializers.SerializerMethodField(help_text="This resource.")
    download = serializers.SerializerMethodField(
        help_text="A done export: where to download its file (kept EVALSITE_EXPORT_KEEP_HOURS hours).")

    class Meta:
        model = FileJob
        fields = ["id", "kind", "status", "progress", "filename", "size", "attempts", "created_at",
                  "started_at", "finished_at", "result", "url", "download"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_progress(self, job):
        return round(file_jobs.progress(job), 4)

    def _absolute(self, name, job):
        path = reverse(name, kwargs={"slug": job.study.slug, "job_id": job.pk})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, job):
        return self._absolute("study-job", job)

    @extend_schema_field(serializers.URLField(allow_null=True))
    def get_download(self, job):
        if job.kind != FileJob.Kind.RANKINGS_EXPORT or job.status != FileJob.Status.DONE \
                or file_jobs.export_expired(job):
            return None
        return self._absolute("study-job-file", job)


def _number(field, help_text, *, integer=False):
    low, high = designer.LIMITS[field]
    kind = serializers.IntegerField if integer else serializers.FloatField
    return kind(min_value=low, max_value=high, default=designer.DEFAULTS[field], help_text=help_text)


def _counts(default, help_text, size):
    low, high = size
    return serializers.ListField(child=serializers.IntegerField(min_value=low, max_value=high), min_length=1,
                                 max_length=designer.MAX_VALUES, help_text=help_text,
                                 default=[int(v) for v in default.split(",")])


class DesignRequestSerializer(serializers.Serializer):
    """The designer's inputs, with the web form's limits (annotations.studies.designer)."""

    n_systems = _number("n_systems", "systems compared (K)", integer=True)
    responses_per_screen = _number("responses_per_screen", "responses ranked per screen (k <= K)", integer=True)
    criteria = _number("criteria", "criteria per screen (each screen gives one ranking per criterion)",
                       integer=True)
    best_win1 = _number("best_win1", "expected Win@1 of the best system, in percent (e.g. 44.3)")
    next_win1 = _number("next_win1", "expected Win@1 of the runner-up, in percent (e.g. 16.3); the other "
                                     "systems share the rest")
    tie_rate = _number("tie_rate", "how often neighbouring responses are put level, in percent")
    reliability_sd = _number("reliability_sd", designer.RELIABILITY_HELP)
    seconds_per_screen = _number("seconds_per_screen", "median seconds per screen, all criteria")
    target = _number("target", "probability of separating #1 from #2 to reach, in percent")
    alpha = _number("alpha", "significance level of the leaderboard's Holm-corrected sign tests")
    items = _counts(designer.DEFAULTS["items"], "numbers of items to try", designer.ITEMS_RANGE)
    per_item = _counts(designer.DEFAULTS["per_item"], "annotations per item to try", designer.PER_ITEM_RANGE)

    def validate(self, attrs):
        attrs = {**attrs, "items": sorted(set(attrs["items"])), "per_item": sorted(set(attrs["per_item"]))}
        errors = designer.check(attrs)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class DesignCellSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    per_item = serializers.IntegerField()
    rankings = serializers.IntegerField(help_text="screens: items x annotations per item")
    hours = serializers.FloatField(help_text="annotator-hours: rankings x seconds per screen / 3600")
    p_separated = serializers.FloatField(help_text="share of simulated studies that ranked the true best first "
                                                   "and separated it from #2 (Holm, alpha)")
    p_separated_se = serializers.FloatField(help_text="its Monte Carlo standard error")
    p_first = serializers.FloatField(help_text="share that ranked the true best first")
    ci_width = serializers.FloatField(help_text="mean 95 % interval width of the best system's Win@1")
    best_win1 = serializers.FloatField(help_text="mean simulated Win@1 of the best system")


class DesignGridSerializer(serializers.Serializer):
    method = serializers.CharField(help_text="how each cell was computed")
    n_systems = serializers.IntegerField()
    k = serializers.IntegerField()
    log_worths = serializers.ListField(child=serializers.FloatField(),
                                       help_text="Plackett-Luce log-worths that give the stated Win@1")
    stated_win1 = serializers.ListField(child=serializers.FloatField())
    criteria = serializers.IntegerField()
    tie_rate = serializers.FloatField()
    reliability_sd = serializers.FloatField()
    seconds_per_screen = serializers.FloatField()
    alpha = serializers.FloatField()
    target = serializers.FloatField()
    n_studies = serializers.IntegerField(help_text="simulated studies per cell")
    seed = serializers.IntegerField()
    cells = DesignCellSerializer(many=True)
    recommended = DesignCellSerializer(allow_null=True, help_text="the cheapest cell reaching the target "
                                                                  "(fewest rankings, then more items), or null")
    explanation = serializers.ListField(child=serializers.CharField(), help_text="the recommendation in words")

