"""Pages of the results area: the researchers' leaderboard with downloads, ranking import and
export, the public read-only link, and the anonymous public leaderboard.
"""
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from annotations.formatting import counted
from annotations.models import FileJob, Study, pseudonyms
from annotations.studies import file_jobs
from annotations.studies.forms import load_file
from annotations.studies.selectors import researcher_study

from . import charts, exports, services
from .figures import DEFAULT, UNIT_HELP, UNIT_LABELS, Options, planned_chance
from .forms import RankingImportForm


ROBUSTNESS_SHOWN = 5  # removed rankings listed before "show all"


def _robustness(lb, alias, public):
    """How many rankings hold the leader up, with the removed rankings by item and annotator
    pseudonym (none on the public page); None before robustness was computed."""
    rob = lb.get("robustness")
    if not rob or rob.get("leader") is None:
        return None
    removed = [{"item": r["item"], "annotator": None if public else alias.get(r["annotator"], r["annotator"])}
               for r in rob.get("removed", [])]
    return {**rob, "removed": removed, "first": removed[:ROBUSTNESS_SHOWN], "rest": removed[ROBUSTNESS_SHOWN:],
            "unlisted": (rob["count"] or 0) - len(removed)}


def _ties(lb):
    """The tie model's parameters in words: per tie order d, how often d equally good responses
    are all tied (`tie_share_equal`)."""
    if "tie_model" not in lb:
        return None
    shares = lb.get("tie_share_equal") or {}
    words = {"2": "two", "3": "three", "4": "four", "5": "five", "6": "six"}
    return {"method": lb["tie_model"],
            "orders": [{"order": order, "words": words.get(order, order), "share": share,
                        "delta": (lb.get("tie_parameters") or {}).get(order)}
                       for order, share in sorted(shares.items(), key=lambda kv: int(kv[0]))],
            "fitted": any(s.get("pl_ties_worth") is not None for s in lb["systems"])}


def _signal(signal):
    """The stop signal and forecast with its plot; None for a snapshot from before they existed."""
    if not signal:
        return None
    return {**signal, "chart": charts.confidence_sequence(signal) if signal.get("available") else None}


def _criteria(board, public=False):
    """Per criterion: its figures, pictures, the groups that cannot be separated, how many
    rankings hold the leader up, the tie model and the stop signal."""
    if not board.data:
        return []
    alias = pseudonyms(board.data.get("annotators", []))
    out = []
    for criterion in board.data["criteria"]:
        lb = criterion["leaderboard"]
        kmax = max((len(s["win_at"]) for s in lb["systems"]), default=0)
        out.append({
            **criterion,
            "board": lb,
            "charts": charts.charts(lb),
            # Win@K is always 100 %; the middle ones are what a table can show.
            "win_at_columns": [str(k) for k in range(2, min(kmax, 5))],
            "inseparable": [group for group in lb["pairwise"]["groups"] if len(group) > 1],
            "shown": [s for s in lb["systems"] if s["n"]],
            "unshown": [s["system"] for s in lb["systems"] if not s["n"]],
            "robustness": _robustness(lb, alias, public),
            "ties": _ties(lb),
            "signal": _signal(criterion.get("stop_signal")),
        })
    return out


def _board_context(study, board, options, *, public=False, poll_url=""):
    data = board.data or {}
    return {
        "study": study, "board": board, "options": options, "public": public, "poll_url": poll_url,
        "criteria": _criteria(board, public),
        "unit_label": UNIT_LABELS[options.unit],
        "unit_help": UNIT_HELP[options.unit],
        "n_excluded": len(data.get("excluded_annotators", [])),
        "n_failed": len(data.get("failed_attention", [])),
        "excluded": set(data.get("excluded_annotators", [])),
        "planned_chance": planned_chance(study) if board.empty else None,
        "question_answered": bool(data.get("question_answered")),
    }


DOWNLOADS = (("json", "JSON"), ("csv", "CSV"), ("md", "Markdown"), ("tex", "LaTeX"))


@login_required
def leaderboard_page(request, slug):
    study = researcher_study(request.user, slug)
    options = Options.from_query(request.GET)
    board = services.current(study, options)
    query = urlencode(options.query)
    context = _board_context(study, board, options,
                             poll_url=f"{reverse('leaderboard', args=[study.slug])}?{query}")
    context["downloads"] = [
        (fmt, label, f"{reverse('leaderboard_download', args=[study.slug, fmt])}?{query}")
        for fmt, label in DOWNLOADS]
    if request.htmx:
        return render(request, "results/partials/leaderboard_body.html", context)
    context.update({
        "import_form": RankingImportForm(),
        "public_url": request.build_absolute_uri(reverse("public_leaderboard", args=[study.public_token]))
        if study.public_token else "",
        "units": UNIT_LABELS,
    })
    return render(request, "results/leaderboard.html", context)


@login_required
@require_GET
def leaderboard_forecast(request, slug):
    """Each criterion's stop signal and forecast alone (default options), for pages other than
    the leaderboard to load in place, e.g. the study's progress page."""
    study = researcher_study(request.user, slug)
    board = services.current(study, DEFAULT)
    return render(request, "results/partials/forecasts.html",
                  {"study": study, "board": board, "criteria": _criteria(board)})


@login_required
@require_GET
def leaderboard_download(request, slug, file_format):
    study = researcher_study(request.user, slug)
    if file_format not in exports.FORMATS:
        raise Http404("no such format")
    options = Options.from_query(request.GET)
    return exports.leaderboard_response(study, services.fresh(study, options), file_format)


@login_required
@require_POST
def rankings_import(request, slug):
    study = researcher_study(request.user, slug)
    form = RankingImportForm(request.POST, request.FILES)
    result, rejected, status = load_file(form, lambda upload: services.upload_rankings(
        study, upload, user=request.user))
    if isinstance(result, FileJob):
        return _job_started(request, study, result)
    context = {"study": study, "result": result, "rejected": rejected, "import_form": form}
    if request.htmx:
        # htmx swaps only 2xx bodies by default; the errors must show in place, so send 200.
        response = render(request, "results/partials/rankings_import_result.html", context)
        if result is not None and result.changed:
            trigger_client_event(response, "rankings-imported")
        return response
    if result is not None:
        messages.success(request, f"Imported {counted(result.rankings_created, 'ranking')} from "
                                  f"{counted(result.annotators, 'annotator')}; "
                                  f"{result.rankings_unchanged:,} already stored.")
        return redirect("leaderboard", study.slug)
    return render(request, "results/import_refused.html", context, status=status)


@login_required
@require_GET
def rankings_export(request, slug):
    return exports.rankings_response(researcher_study(request.user, slug))


@login_required
@require_POST
def rankings_export_prepare(request, slug):
    """Prepare the rankings export as a file that a worker writes (with progress), to download
    once ready; the streamed download stays as it is."""
    study = researcher_study(request.user, slug)
    return _job_started(request, study, services.start_rankings_export(study, user=request.user))


def _job_started(request, study, job):
    # The page shows the job in place (htmx) or on its own page; both poll until it finishes.
    if request.htmx:
        return render(request, "results/partials/rankings_job.html", _job_context(study, job))
    return redirect("rankings_job", slug=study.slug, job_id=job.pk)


JOB_KINDS = [FileJob.Kind.RANKINGS_IMPORT, FileJob.Kind.RANKINGS_EXPORT]


def _job_context(study, job):
    """A rankings job's progress, then what the synchronous import shows (the summary or the located
    refusal), or the prepared export's download link."""
    context = {"study": study, "job": job, "live": job.status in file_jobs.LIVE,
               "percent": int(file_jobs.progress(job) * 100)}
    if job.kind == FileJob.Kind.RANKINGS_EXPORT:
        context["expired"] = job.status == FileJob.Status.DONE and file_jobs.export_expired(job)
    elif job.status == FileJob.Status.DONE:
        context["result"] = services.RankingImportSummary(**job.result)
    if job.status == FileJob.Status.FAILED:
        context["rejected"] = file_jobs.refused(job)
    return context


@login_required
@require_GET
def rankings_job(request, slug, job_id):
    study = researcher_study(request.user, slug)
    job = file_jobs.hand_over(file_jobs.study_job(study, job_id, JOB_KINDS))
    context = _job_context(study, job)
    if not request.htmx:
        return render(request, "results/rankings_job.html", context)
    response = render(request, "results/partials/rankings_job.html", context)
    result = context.get("result")
    if result is not None and result.changed:
        trigger_client_event(response, "rankings-imported")
    return response


@login_required
@require_GET
def rankings_job_download(request, slug, job_id):
    study = researcher_study(request.user, slug)
    return file_jobs.file_response(file_jobs.study_job(study, job_id, [FileJob.Kind.RANKINGS_EXPORT]))


@login_required
@require_POST
def public_link(request, slug):
    study = researcher_study(request.user, slug)
    if request.POST.get("action") == "revoke":
        services.revoke_public_link(study)
        messages.success(request, "The public link is revoked: it now answers “not found”.")
    else:
        services.create_public_link(study)
        messages.success(request, "Anyone with the public link can now read this leaderboard.")
    return redirect(f"{reverse('leaderboard', args=[study.slug])}#public-link")


@require_GET
def public_leaderboard(request, token):
    """Anonymous and read-only: default options, no controls, no annotator identities."""
    study = get_object_or_404(Study, public_token=token)
    options = DEFAULT
    board = services.current(study, options)
    context = _board_context(study, board, options, public=True,
                             poll_url=reverse("public_leaderboard", args=[token]))
    template = "results/partials/leaderboard_body.html" if request.htmx else "results/public.html"
    response = render(request, template, context)
    response["X-Robots-Tag"] = "noindex"
    # The token must not leak to other sites through links; "same-origin" keeps it in. Not
    # "no-referrer": a browser then sends "Origin: null" with the page's own forms, and the CSRF
    # check refuses them (the language switch answered 403).
    response["Referrer-Policy"] = "same-origin"
    return response
