"""API representations of the loading area, and of a refused upload (which every import shares);
writes go through services."""
from rest_framework import serializers

from annotations.models import Criterion, Item, Response, Study, System


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
                  "annotations_per_item", "allow_ties", "attention_min_pass_rate", "status", "owner",
                  "item_count", "system_count", "created_at"]
        read_only_fields = ["owner", "created_at", "attention_min_pass_rate"]
        extra_kwargs = {"slug": {"validators": []}}


class StudyUpdateSerializer(serializers.ModelSerializer):
    """After creation the slug and criteria stay fixed: rankings will refer to them."""

    class Meta:
        model = Study
        fields = ["title", "instructions", "responses_per_screen", "annotations_per_item",
                  "allow_ties", "lease_minutes", "attention_min_pass_rate", "status"]


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
