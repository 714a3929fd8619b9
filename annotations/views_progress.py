"""Researcher pages for the annotators' side: progress, invitation and crowd settings, attention checks.

Only a study's researchers reach them; everyone else gets 404, as on the other researcher pages.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import assignment as assigning
from . import joining
from .forms_annotate import AnnotationSettingsForm, AttentionCheckForm
from .models import CrowdPlatform, Item
from .progress import study_progress
from .views import researcher_study

CROWD_QUERY = {
    CrowdPlatform.PROLIFIC: "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}",
    CrowdPlatform.MTURK: "?worker_id=WORKER_ID&assignment_id=ASSIGNMENT_ID",
}


@login_required
def progress(request, slug):
    study = researcher_study(request, slug)
    invite = request.build_absolute_uri(reverse("join", args=[study.invite_token]))
    crowd_query = CROWD_QUERY.get(study.crowd_platform)
    return render(request, "annotations/study_progress.html", {
        "study": study, "progress": study_progress(study),
        "invite_link": invite, "crowd_link": invite + crowd_query if crowd_query else "",
        "settings_form": AnnotationSettingsForm(instance=study),
    })


@login_required
@require_POST
def annotation_settings(request, slug):
    study = researcher_study(request, slug)
    form = AnnotationSettingsForm(request.POST, instance=study)
    if form.is_valid():
        joining.update_annotation_settings(study, **form.cleaned_data)
        messages.success(request, "Annotator settings saved.")
    else:
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
    return redirect("study_progress", study.slug)


@login_required
@require_POST
def new_invite_link(request, slug):
    study = researcher_study(request, slug)
    joining.new_invite_link(study)
    messages.success(request, "A new invitation link was made; the old one no longer works.")
    return redirect("study_progress", study.slug)


@login_required
@require_POST
def attention_check(request, slug, external_id):
    """Mark an item as an attention check (or clear it) from the item page."""
    study = researcher_study(request, slug)
    item = get_object_or_404(Item, study=study, external_id=external_id)
    if request.POST.get("clear"):
        assigning.clear_attention_check(item)
        messages.success(request, f"Item {item.external_id} is no longer an attention check.")
    else:
        form = AttentionCheckForm(request.POST, systems=study.systems.values_list("name", flat=True))
        if form.is_valid():
            try:
                assigning.set_attention_check(item, form.cleaned_data["system"], form.cleaned_data["rule"])
            except assigning.AttentionCheckInvalid as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Item {item.external_id} is now an attention check.")
        else:
            messages.error(request, "Choose a system and a rule.")
    return redirect("item_detail", study.slug, item.external_id)
