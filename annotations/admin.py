"""Admin for operators. Outputs are loaded through the upload services, so responses are read-only here."""
from django.contrib import admin

from .models import (
    CrowdParticipant, Criterion, Item, Membership, OutputUpload, Response, ResponseRevision, Study, System,
)


class CriterionInline(admin.TabularInline):
    model = Criterion
    extra = 0


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ["slug", "title", "status", "owner", "responses_per_screen", "annotations_per_item",
                    "created_at"]
    list_filter = ["status"]
    search_fields = ["slug", "title"]
    inlines = [CriterionInline, MembershipInline]
    autocomplete_fields = ["owner"]
    readonly_fields = ["figures_version"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "attention_min_pass_rate" in form.changed_data:
            obj.figures_changed()  # who is left out for failed attention checks may change


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ["name", "study", "created_at"]
    list_filter = ["study"]
    search_fields = ["name", "description"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "study", "created_at"]
    list_filter = ["study"]
    search_fields = ["external_id", "prompt"]
    # Attention checks are set on the item page or with mark_attention_check, which rescore the
    # item's rankings and mark the leaderboards stale.
    readonly_fields = ["study", "external_id", "prompt", "created_at", "attention_system", "attention_rule"]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["item", "system", "source", "updated_at"]
    list_filter = ["source", "system__study"]
    search_fields = ["item__external_id", "system__name", "text"]
    list_select_related = ["item", "system"]
    readonly_fields = ["item", "system", "text", "reasoning", "source", "metadata", "created_at", "updated_at"]

    def has_add_permission(self, request):
        return False


@admin.register(ResponseRevision)
class ResponseRevisionAdmin(admin.ModelAdmin):
    list_display = ["response", "replaced_at", "replaced_by"]
    readonly_fields = ["response", "text", "reasoning", "source", "replaced_at", "replaced_by"]


@admin.register(OutputUpload)
class OutputUploadAdmin(admin.ModelAdmin):
    list_display = ["study", "filename", "file_format", "rows", "responses_created", "responses_replaced",
                    "responses_unchanged", "uploaded_by", "created_at"]
    list_filter = ["study", "file_format"]


@admin.register(CrowdParticipant)
class CrowdParticipantAdmin(admin.ModelAdmin):
    """Read-only: participants come in through crowd links, and are released on the progress page."""

    list_display = ["participant_id", "platform", "study", "session_id", "created_at", "last_seen_at"]
    list_filter = ["platform", "study"]
    search_fields = ["participant_id", "session_id"]
    readonly_fields = ["study", "platform", "participant_id", "user", "session_id", "secret_hash",
                       "created_at", "last_seen_at"]

    def has_add_permission(self, request):
        return False
