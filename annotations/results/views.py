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
from annotations.models import Study
from annotations.studies.forms import load_file
from annotations.studies.selectors import researcher_study

from . import charts, exports, services
from .figures import DEFAULT, UNIT_HELP, UNIT_LABELS, Options, planned_chance
from .forms import RankingImportForm


def _criteria(board):
    """Per criterion: its figures, pictures and the groups that cannot be separated."""
    if not board.data:
        return []
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
        })
    return out


def _board_context(study, board, options, *, public=False, poll_url=""):
    data = board.data or {}
    return {
        "study": study, "board": board, "options": options, "public": public, "poll_url": poll_url,
        "criteria": _criteria(board),
        "unit_label": UNIT_LABELS[options.unit],
        "unit_help": UNIT_HELP[options.unit],
        "n_excluded": len(data.get("excluded_annotators", [])),
        "n_failed": len(data.get("failed_attention", [])),
        "excluded": set(data.get("excluded_annotators", [])),
        "planned_chance": planned_chance(study) if board.empty else None,
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
    result, rejected, status = load_file(form, lambda upload: services.import_rankings(
        study, upload, filename=upload.name, user=request.user))
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
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak through links
    return response
