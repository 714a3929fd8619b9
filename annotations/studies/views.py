"""Pages of the loading area: creating a study, its page with coverage and upload, its settings and
researchers, an item's preview, and a researcher's API token."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from annotations.models import FileJob, Item, Study

from . import file_jobs, selectors, services
from .forms import CollaboratorForm, StudyForm, StudySettingsForm, StudyStatusForm, UploadForm, load_file
from .selectors import researcher_study


@login_required
@permission_required("annotations.add_study", raise_exception=True)
def study_create(request):
    # The designer's "Create a study with these settings" arrives here with its cell in the query.
    planned = _planned(request.GET)
    form = StudyForm(request.POST or None, initial={k: v for k, v in planned.items() if k != "items"})
    if request.method == "POST" and form.is_valid():
        try:
            study = services.create_study(owner=request.user, **form.cleaned_data)
        except services.StudyInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"Study “{study.title}” created. Now upload the systems' outputs.")
            return redirect(study)
    return render(request, "studies/study_form.html", {"form": form, "planned": planned})


def _planned(params):
    """The designer's chosen cell from a query string: whole numbers within the form's bounds only."""
    bounds = {"responses_per_screen": (2, 12), "annotations_per_item": (1, 100), "items": (1, 100_000)}
    planned = {}
    for name, (low, high) in bounds.items():
        try:
            value = int(params.get(name, ""))
        except ValueError:
            continue
        if low <= value <= high:
            planned[name] = value
    return planned


def _detail_context(request, study, **extra):
    return {
        "study": study,
        "overview": selectors.study_overview(study),
        "criteria": study.criteria.all(),
        "uploads": study.uploads.select_related("uploaded_by")[:10],
        "upload_form": extra.pop("upload_form", None) or UploadForm(),
        "status_form": StudyStatusForm(initial={"status": study.status}),
        "background_bytes": settings.EVALSITE_BACKGROUND_BYTES,
        **extra,
    }


@login_required
def study_detail(request, slug):
    study = researcher_study(request.user, slug)
    return render(request, "studies/study_detail.html", _detail_context(request, study))


@login_required
@require_POST
def study_upload(request, slug):
    study = researcher_study(request.user, slug)
    form = UploadForm(request.POST, request.FILES)
    result, errors, status = load_file(form, lambda upload: services.upload_outputs(
        study, upload, file_format=form.cleaned_data["file_format"] or None,
        replace=form.cleaned_data["replace"], user=request.user))
    if isinstance(result, FileJob):
        # A large file: a worker loads it; the page shows its progress, then the same summary.
        if request.htmx:
            return render(request, "studies/partials/upload_job.html",
                          _upload_job_context(study, result, embedded=True))
        return redirect("upload_job", slug=study.slug, job_id=result.pk)
    if request.htmx:
        context = {"study": study, "result": result, "rejected": errors, "upload_form": form}
        if result is not None:
            context["refresh"] = True
            context["overview"] = selectors.study_overview(study)
            context["uploads"] = study.uploads.select_related("uploaded_by")[:10]
        # htmx swaps only 2xx bodies by default; the errors must show in place, so send 200.
        return render(request, "studies/partials/upload_result.html", context)
    return render(request, "studies/study_detail.html",
                  _detail_context(request, study, result=result, rejected=errors, upload_form=form),
                  status=status)


def _upload_job_context(study, job, *, embedded=False):
    """A large upload's progress, then what the synchronous upload shows: the summary (and, on the
    study page, the refreshed coverage and history) or the located refusal."""
    context = {"study": study, "job": job, "embedded": embedded, "live": job.status in file_jobs.LIVE,
               "percent": int(file_jobs.progress(job) * 100)}
    if job.status == FileJob.Status.DONE:
        context["result"] = services.ImportSummary(**job.result)
        if embedded:
            context.update(refresh=True, overview=selectors.study_overview(study),
                           uploads=study.uploads.select_related("uploaded_by")[:10])
    elif job.status == FileJob.Status.FAILED:
        context["rejected"] = file_jobs.refused(job)
    return context


@login_required
@require_GET
def upload_job(request, slug, job_id):
    study = researcher_study(request.user, slug)
    job = file_jobs.hand_over(file_jobs.study_job(study, job_id, [FileJob.Kind.OUTPUTS_UPLOAD]))
    context = _upload_job_context(study, job, embedded=bool(request.htmx) and request.GET.get("in") == "study")
    template = "studies/partials/upload_job.html" if request.htmx else "studies/upload_job.html"
    return render(request, template, context)


@login_required
@require_POST
def study_status(request, slug):
    study = researcher_study(request.user, slug)
    form = StudyStatusForm(request.POST)
    if form.is_valid():
        try:
            services.set_study_status(study, form.cleaned_data["status"])
        except services.StudyInvalid as exc:
            messages.error(request, exc.errors["status"])
        else:
            messages.success(request, f"The study is now {study.get_status_display().lower()}.")
    return redirect(study)


@login_required
def study_edit(request, slug):
    study = researcher_study(request.user, slug)
    form = StudySettingsForm(request.POST or None, instance=study)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_study(Study.objects.get(pk=study.pk), **form.cleaned_data)
        except services.StudyInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, "Study settings saved.")
            return redirect(study)
    return render(request, "studies/study_edit.html", {"study": study, "form": form})


@login_required
def study_researchers(request, slug):
    study = researcher_study(request.user, slug)
    form = CollaboratorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.add_collaborator(study, form.cleaned_data["username"])
        except services.StudyInvalid as exc:
            form.add_error("username", exc.errors["username"])
        else:
            messages.success(request, f"{form.cleaned_data['username']} is now a researcher of this study.")
            return redirect("study_researchers", slug=study.slug)
    researchers = study.memberships.filter(role="researcher").select_related("user").order_by("created_at")
    return render(request, "studies/study_researchers.html",
                  {"study": study, "form": form, "researchers": researchers})


@login_required
def item_detail(request, slug, external_id):
    study = researcher_study(request.user, slug)
    item = get_object_or_404(Item, study=study, external_id=external_id)
    responses = item.responses.select_related("system").order_by("system__name")
    neighbours = Item.objects.filter(study=study)
    previous = neighbours.filter(pk__lt=item.pk).order_by("-pk").first()
    following = neighbours.filter(pk__gt=item.pk).order_by("pk").first()
    return render(request, "studies/item_detail.html", {
        "study": study, "item": item, "responses": responses,
        "previous": previous, "following": following,
        "missing": study.systems.exclude(responses__item=item).order_by("name"),
    })


@login_required
def api_token(request):
    if request.method == "POST":
        services.replace_api_token(request.user)
        messages.success(request, "A new API token was created; the old one no longer works.")
        return redirect("api_token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "studies/api_token.html", {"token": token})
