"""Researcher pages for generation: start a job, watch its progress (htmx polling), and cancel,
resume or retry it. Thin: forms and generation.services do the work.
"""
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from annotations.studies.selectors import researcher_study

from . import selectors, services
from .backends import BackendError
from .backends.vllm import VLLMBackend
from .forms import GenerationForm
from .models import GenerationJob
from .strategies import STRATEGIES


def served_models():
    """(model names, problem): what the configured vLLM servers list, or why none answered."""
    try:
        backend = VLLMBackend(settings.VLLM_BASE_URLS, "any", connect_timeout=2.0)
        return backend.list_models(), ""
    except BackendError as exc:
        return [], str(exc)


def _generate_context(study, form, models, problem):
    return {"study": study, "form": form, "served_models": models, "models_problem": problem,
            # Plain dicts: a template would call a strategy class, trying to instantiate it.
            "strategies": [{"name": cls.name, "label": cls.label, "description": cls.description}
                           for cls in STRATEGIES.values()],
            "jobs": selectors.study_jobs(study)[:20]}


@login_required
def generate(request, slug):
    study = researcher_study(request.user, slug)
    models, problem = served_models()
    # One model served, as with a single vLLM server: nothing to choose, so it is filled in.
    form = GenerationForm(request.POST or None, initial={"model": models[0]} if len(models) == 1 else None)
    if request.method == "POST" and form.is_valid():
        try:
            job = services.start_job(study, user=request.user, **form.job_options())
        except services.JobInvalid as exc:
            for field, message in exc.errors.items():
                form.add_error(field if field in form.fields else None, message)
        else:
            return redirect("generation_job", slug=study.slug, job_id=job.id)
    status = 400 if form.errors else 200
    return render(request, "generation/generate.html", _generate_context(study, form, models, problem),
                  status=status)


def _job(request, slug, job_id):
    study = researcher_study(request.user, slug)
    return study, get_object_or_404(GenerationJob.objects.select_related("system"), id=job_id,
                                    study=study)


def _job_context(job):
    return {"job": job, "study": job.study, "progress": selectors.job_progress(job),
            "stats": selectors.job_stats(job),
            "failures": selectors.job_failures(job), "live": job.status in ("queued", "running")}


@login_required
def job_detail(request, slug, job_id):
    study, job = _job(request, slug, job_id)
    # A job whose task could not be enqueued (Redis down) is handed over again while it is watched.
    services.enqueue_waiting(job)
    template = "generation/partials/progress.html" if request.htmx else "generation/job.html"
    return render(request, template, _job_context(job))


@login_required
@require_POST
def job_action(request, slug, job_id, action):
    study, job = _job(request, slug, job_id)
    act = {"cancel": services.cancel_job, "resume": services.resume_job,
           "retry": services.retry_failed}[action]
    try:
        act(job)
    except services.JobStateError as exc:
        messages.error(request, str(exc))
    return redirect("generation_job", slug=study.slug, job_id=job.id)
