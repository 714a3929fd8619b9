"""The annotators' pages: joining a study, its instructions, the ranking screen, skip, flag, done.

Views stay thin (writes are in assignment.py and joining.py). Nothing rendered here may tell which
system wrote a response: responses reach the browser only as text, a letter and a per-assignment handle.
"""
from functools import lru_cache

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from . import assignment as assigning
from . import joining
from .forms_annotate import SignUpForm
from .models import Assignment, Membership, Response, Study
from .progress import annotator_progress
from .templatetags.evalsite import markdown

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def annotator_study(request, slug):
    """The study if this user annotates it; 404 otherwise, as if it did not exist."""
    return get_object_or_404(
        Study.objects.filter(memberships__user=request.user, memberships__role=Membership.Role.ANNOTATOR),
        slug=slug)


def _own(request, study, public_id):
    """The annotator's own assignment, by its public id (the services look it up and 404 if absent)."""
    return assigning.Ref(study=study, annotator_id=request.user.pk, public_id=public_id)


def study_criteria(study):
    """The study's criteria, cached: they never change once a study exists, and every screen needs them."""
    key = f"evalsite:criteria:{study.pk}"
    criteria = cache.get(key)
    if criteria is None:
        criteria = list(study.criteria.all())
        cache.set(key, criteria, 300)
    return criteria


def join(request, token):
    """/join/<invite_token>/: sign up or log in, become an annotator; crowd links log in by their id."""
    study = get_object_or_404(Study, invite_token=token)
    identity = joining.crowd_identity(study, request.GET)
    if identity:
        try:
            user, _membership = joining.crowd_annotator(study, *identity)
        except joining.JoinRefused as exc:
            return render(request, "annotate/join.html", {"study": study, "refused": exc.message}, status=400)
        if request.user.is_authenticated and request.user.pk != user.pk:
            logout(request)
        login(request, user, backend=LOGIN_BACKEND)
        return redirect("annotate_start", study.slug)
    if study.status == Study.Status.CLOSED:
        return render(request, "annotate/join.html",
                      {"study": study, "refused": _("This study is closed and takes no more annotators.")})
    if request.user.is_authenticated:
        membership = joining.join_study(study, request.user)
        if membership.role == Membership.Role.RESEARCHER:
            messages.info(request, _("You are a researcher of this study; annotators join through this link."))
            return redirect(study)
        return redirect("annotate_start", study.slug)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = joining.sign_up_and_join(study, form)
        login(request, user, backend=LOGIN_BACKEND)
        return redirect("annotate_start", study.slug)
    return render(request, "annotate/join.html", {
        "study": study, "form": form, "login_url": f"{reverse('login')}?next={request.path}"})


@login_required
@require_GET
def start(request, slug):
    """The study's instructions, the annotator's progress and a start (or resume) button."""
    study = annotator_study(request, slug)
    return render(request, "annotate/start.html", {
        "study": study, "criteria": study.criteria.all(),
        "progress": annotator_progress(study, request.user),
        "resuming": Assignment.objects.filter(study=study, annotator=request.user,
                                              status=Assignment.Status.ACTIVE).exists(),
    })


@lru_cache(maxsize=64)
def instructions_html(text):
    """A study's instructions as sanitised HTML, rendered once per process for each text."""
    return markdown(text)


def _screen(request, study, *, criteria=None, status=200):
    """The ranking screen for the annotator's current or next item, or a way to the done page."""
    try:
        current = assigning.next_assignment(study, request.user)
    except assigning.NotAnnotator:
        raise Http404 from None
    if current is None:
        url = reverse("annotate_done", args=[study.slug])
        if request.htmx:
            return HttpResponse(headers={"HX-Redirect": url})
        return redirect(url)
    texts = getattr(current, "shown_texts", None) or dict(
        Response.objects.filter(pk__in=current.handles.values()).order_by().values_list("pk", "text"))
    cards = []
    for i, handle in enumerate(current.display_order):
        letter, text = assigning.LETTERS[i], texts.get(current.handles[handle], "")
        # Worked out once per card here rather than once per card and criterion in the template.
        cards.append({"handle": handle, "letter": letter, "text": text,
                      "snippet": Truncator(text).chars(60),
                      "title": _("Response %(letter)s") % {"letter": letter},
                      "not_placed": _("Response %(letter)s, not placed") % {"letter": letter}})
    context = {
        "study": study, "assignment": current, "prompt": current.item.prompt, "cards": cards,
        "criteria": criteria if criteria is not None else study_criteria(study),
        "progress": annotator_progress(study, request.user),
        "instructions": instructions_html(study.instructions), "strings": _script_strings(),
    }
    template = "partials/annotate_screen.html" if request.htmx else "annotate/work.html"
    return render(request, template, context, status=status)


def _script_strings():
    """What ranking.js says, translated here so that the script needs no catalogue of its own."""
    return {
        "incomplete": _("Place every response for every question before you submit."),
        "notPlaced": _("Response %(letter)s, not placed"),
        "placed": _("Response %(letter)s, place %(position)s"),
        "tied": _("Response %(letter)s, place %(position)s, tied with the one above"),
        "hide": _("Hide ranking"),
        "show": _("Show ranking"),
    }


@transaction.non_atomic_requests
@login_required
@require_GET
def work(request, slug):
    """GET resumes the current item or leases the next: reloading the page changes nothing."""
    return _screen(request, annotator_study(request, slug))


def _refused(request, study, exc):
    if request.htmx:
        # The annotator's placements stay on screen: only the message area is replaced.
        reply = render(request, "partials/annotate_message.html", {"study": study, "refusal": exc})
        reply["HX-Retarget"] = "#rank-message"
        reply["HX-Reswap"] = "innerHTML"
        return reply
    messages.error(request, exc.message)
    return redirect("annotate_work", study.slug)


def _act(request, study, action, criteria=None):
    """Run a submit, skip or flag on the annotator's own assignment: another's (or a missing one)
    is a 404, a refusal is shown in place. Then htmx gets the next screen in place; a plain POST a
    redirect."""
    try:
        action()
    except Assignment.DoesNotExist:
        raise Http404 from None
    except assigning.AssignmentRefused as exc:
        return _refused(request, study, exc)
    if request.htmx:
        return _screen(request, study, criteria=criteria)
    return redirect("annotate_work", study.slug)


@transaction.non_atomic_requests
@login_required
@require_POST
def submit(request, slug, public_id):
    study = annotator_study(request, slug)
    criteria = study_criteria(study)
    rankings = assigning.rankings_from_form(criteria, request.POST)
    return _act(request, study, lambda: assigning.submit_ranking(
        _own(request, study, public_id), rankings, rationale=request.POST.get("rationale", ""),
        criteria=criteria), criteria)


@transaction.non_atomic_requests
@login_required
@require_POST
def skip(request, slug, public_id):
    study = annotator_study(request, slug)
    return _act(request, study, lambda: assigning.skip_assignment(_own(request, study, public_id)))


@transaction.non_atomic_requests
@login_required
@require_POST
def flag(request, slug, public_id):
    study = annotator_study(request, slug)
    return _act(request, study, lambda: assigning.flag_assignment(
        _own(request, study, public_id), request.POST.get("flag_reason", "")))


@login_required
@require_GET
def done(request, slug):
    """Nothing left for this annotator: thanks, and the completion code or link for crowd platforms."""
    study = annotator_study(request, slug)
    progress = annotator_progress(study, request.user)
    remaining = assigning.has_work(study, request.user)
    finished = not remaining and progress.done > 0
    if finished:
        membership = Membership.objects.get(study=study, user=request.user)
        assigning.complete_membership(membership)
    return render(request, "annotate/done.html", {
        "study": study, "progress": progress, "remaining": remaining, "finished": finished})
