"""Researcher pages: study list, study page with coverage and upload, item preview, API token."""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.cache import cache
from django.db import connection, transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST
from rest_framework.authtoken.models import Token

from . import selectors, services
from .progress import annotator_studies
from .selectors import count_per_study
from .forms import CollaboratorForm, StudyForm, StudySettingsForm, StudyStatusForm, UploadForm
from .models import Item, Study, System


def researcher_study(request, slug):
    """The study if this user is one of its researchers; 404 otherwise (existence stays private)."""
    return get_object_or_404(Study.objects.for_researcher(request.user), slug=slug)


@login_required
def home(request):
    studies = (
        Study.objects.for_researcher(request.user)
        .annotate(n_items=count_per_study(Item), n_systems=count_per_study(System))
        .select_related("owner")
    )
    # Annotators see the studies they rank here, and nothing of the researchers' side of them.
    annotating = annotator_studies(request.user)
    return render(request, "annotations/home.html", {"studies": studies, "annotating": annotating})


@login_required
@permission_required("annotations.add_study", raise_exception=True)
def study_create(request):
    form = StudyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = services.create_study(owner=request.user, **form.cleaned_data)
        except services.StudyInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            messages.success(request, f"Study “{study.title}” created. Now upload the systems' outputs.")
            return redirect(study)
    return render(request, "annotations/study_form.html", {"form": form})


def _detail_context(request, study, **extra):
    return {
        "study": study,
        "overview": selectors.study_overview(study),
        "criteria": study.criteria.all(),
        "uploads": study.uploads.select_related("uploaded_by")[:10],
        "upload_form": extra.pop("upload_form", None) or UploadForm(),
        "status_form": StudyStatusForm(initial={"status": study.status}),
        **extra,
    }


@login_required
def study_detail(request, slug):
    study = researcher_study(request, slug)
    return render(request, "annotations/study_detail.html", _detail_context(request, study))


@login_required
@require_POST
def study_upload(request, slug):
    study = researcher_study(request, slug)
    form = UploadForm(request.POST, request.FILES)
    result = errors = None
    status = 200
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            result = services.import_outputs(
                study, upload, filename=upload.name, file_format=form.cleaned_data["file_format"] or None,
                replace=form.cleaned_data["replace"], user=request.user,
            )
        except services.UploadRejected as exc:
            errors = exc
            status = exc.status
    else:
        status = 400
    if request.htmx:
        context = {"study": study, "result": result, "rejected": errors, "upload_form": form}
        if result is not None:
            context["refresh"] = True
            context["overview"] = selectors.study_overview(study)
            context["uploads"] = study.uploads.select_related("uploaded_by")[:10]
        # htmx swaps only 2xx bodies by default; the errors must show in place, so send 200.
        return render(request, "partials/upload_result.html", context)
    return render(request, "annotations/study_detail.html",
                  _detail_context(request, study, result=result, rejected=errors, upload_form=form),
                  status=status)


@login_required
@require_POST
def study_status(request, slug):
    study = researcher_study(request, slug)
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
    study = researcher_study(request, slug)
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
    return render(request, "annotations/study_edit.html", {"study": study, "form": form})


@login_required
def study_researchers(request, slug):
    study = researcher_study(request, slug)
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
    return render(request, "annotations/study_researchers.html",
                  {"study": study, "form": form, "researchers": researchers})


@login_required
def item_detail(request, slug, external_id):
    study = researcher_study(request, slug)
    item = get_object_or_404(Item, study=study, external_id=external_id)
    responses = item.responses.select_related("system").order_by("system__name")
    neighbours = Item.objects.filter(study=study)
    previous = neighbours.filter(pk__lt=item.pk).order_by("-pk").first()
    following = neighbours.filter(pk__gt=item.pk).order_by("pk").first()
    return render(request, "annotations/item_detail.html", {
        "study": study, "item": item, "responses": responses,
        "previous": previous, "following": following,
        "missing": study.systems.exclude(responses__item=item).order_by("name"),
    })


@login_required
def api_token(request):
    if request.method == "POST":
        Token.objects.filter(user=request.user).delete()
        token = Token.objects.create(user=request.user)
        messages.success(request, "A new API token was created; the old one no longer works.")
        return redirect("api_token")
    token = Token.objects.filter(user=request.user).first()
    return render(request, "annotations/api_token.html", {"token": token})


@transaction.non_atomic_requests
@require_GET
def healthz(request):
    """For load balancers and docker-compose: 200 when the database (and Redis, if used) answer."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, and says why
        checks["database"] = f"error: {exc.__class__.__name__}"
    if settings.REDIS_URL:
        try:
            cache.set("healthz", "ok", 10)
            checks["redis"] = "ok" if cache.get("healthz") == "ok" else "error: no round trip"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {exc.__class__.__name__}"
    else:
        checks["redis"] = "not configured (tasks run in process)"
    healthy = all(not value.startswith("error") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)

