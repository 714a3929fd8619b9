"""Pages of the annotators' area: for annotators, joining a study, its instructions, the ranking
screen, skip, flag and done; for researchers, progress, invitations, crowd settings, attention checks.

Views stay thin (writes are in services.py). Nothing an annotator is sent may tell which system
wrote a response: responses reach the browser only as text, a letter and a per-assignment handle.
"""
import csv
import io
from functools import lru_cache

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.text import Truncator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from annotations.formatting import csv_cell, markdown
from annotations.models import Assignment, CrowdParticipant, CrowdPlatform, Item, Membership, Response, Study
from annotations.studies.selectors import question_answered, researcher_study

from . import services
from .forms import AnnotationSettingsForm, AttentionCheckForm, SignUpForm
from .selectors import (
    annotator_progress, annotator_study, crowd_participants, has_active_assignment, has_work,
    skipped_waiting, study_criteria, study_progress, study_screen_balance,
)

LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"


def _own(request, study, public_id):
    """The annotator's own assignment, by its public id (the services look it up and 404 if absent)."""
    return services.Ref(study=study, annotator_id=request.user.pk, public_id=public_id)


# The browser secret that binds a crowd participant to the browser where they started.
CROWD_COOKIE_SALT = "evalsite.crowd-browser"
CROWD_COOKIE_MAX_AGE = 60 * 60 * 24 * 90


def _crowd_cookie(study):
    # Named by slug, sent only to /join/: a replaced invitation link keeps the participant's browser.
    return f"crowd_{study.slug}"


def join(request, token):
    """/join/<invite_token>/: sign up or log in, become an annotator; crowd links log in by their id."""
    study = get_object_or_404(Study, invite_token=token)
    identity = services.crowd_identity(study, request.GET)
    if identity:
        return _crowd_join(request, study, *identity)
    if study.status == Study.Status.CLOSED:
        return render(request, "annotating/join.html",
                      {"study": study, "refused": _("This study is closed and takes no more annotators.")})
    if request.user.is_authenticated:
        membership = services.join_study(study, request.user)
        if membership.role == Membership.Role.RESEARCHER:
            messages.info(request, _("You are a researcher of this study; annotators join through this link."))
            return redirect(study)
        return redirect("annotate_start", study.slug)
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.sign_up_and_join(study, form)
        login(request, user, backend=LOGIN_BACKEND)
        return redirect("annotate_start", study.slug)
    return render(request, "annotating/join.html", {
        "study": study, "form": form, "login_url": f"{reverse('login')}?next={request.path}"})


def _crowd_join(request, study, external_id, session):
    """A crowd link: log in the participant's own account; never switch a logged-in user silently."""
    switching = (request.user.is_authenticated
                 and not services.is_crowd_user_for(study, request.user, external_id))
    if switching and not (request.method == "POST" and request.POST.get("continue")):
        return render(request, "annotating/join_switch.html", {
            "study": study, "current": request.user.get_username(), "participant_id": external_id,
            "action": request.get_full_path()})
    secret = request.get_signed_cookie(_crowd_cookie(study), default=None, salt=CROWD_COOKIE_SALT)
    try:
        entry = services.crowd_enter(study, external_id, session, secret=secret,
                                     address=request.META.get("REMOTE_ADDR", ""))
    except services.JoinRefused as exc:
        return render(request, "annotating/join.html", {"study": study, "refused": exc.message},
                      status=exc.status)
    if switching:
        logout(request)
    if request.user.pk != entry.user.pk:
        login(request, entry.user, backend=LOGIN_BACKEND)
    reply = redirect("annotate_start", study.slug)
    if entry.new_secret:
        reply.set_signed_cookie(_crowd_cookie(study), entry.new_secret, salt=CROWD_COOKIE_SALT,
                                max_age=CROWD_COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                                secure=settings.SESSION_COOKIE_SECURE, path="/join/")
    return reply


@login_required
@require_GET
def start(request, slug):
    """The study's instructions, the annotator's progress and a start (or resume) button."""
    study = annotator_study(request.user, slug)
    return render(request, "annotating/start.html", {
        "study": study, "criteria": study.criteria.all(),
        "progress": annotator_progress(study, request.user),
        "resuming": has_active_assignment(study, request.user),
    })


@lru_cache(maxsize=64)
def instructions_html(text):
    """A study's instructions as sanitised HTML, rendered once per process for each text."""
    return markdown(text)


@lru_cache(maxsize=512)
def _text_html(text):
    return markdown(text)


def shown_text(study, text):
    """A post or response as the study shows it: exactly as uploaded (the template keeps its
    whitespace), or with render_markdown through the same sanitiser as the instructions."""
    return {"html": _text_html(text)} if study.render_markdown else {"plain": text}


def _screen(request, study, *, criteria=None, status=200, notice=""):
    """The ranking screen for the annotator's current or next item, or a way to the done page."""
    try:
        current = services.next_assignment(study, request.user)
    except services.NotAnnotator:
        raise Http404 from None
    if current is None:
        url = reverse("annotate_done", args=[study.slug])
        if request.htmx:
            return HttpResponseClientRedirect(url)
        return redirect(url)
    texts = getattr(current, "shown_texts", None) or dict(
        Response.objects.filter(pk__in=current.handles.values()).order_by().values_list("pk", "text"))
    cards = []
    for i, handle in enumerate(current.shown_handles):
        letter, text = services.LETTERS[i], texts.get(current.handles[handle], "")
        # Worked out once per card here rather than once per card and criterion in the template.
        cards.append({"handle": handle, "letter": letter, "text": shown_text(study, text),
                      "snippet": Truncator(text).chars(60),
                      "title": _("Response %(letter)s") % {"letter": letter},
                      "not_placed": _("Response %(letter)s, not placed") % {"letter": letter}})
    prompt = current.item.prompt
    context = {
        "study": study, "assignment": current, "prompt": shown_text(study, prompt),
        "prompt_gist": Truncator(" ".join(prompt.split())).chars(140), "cards": cards,
        "panes": [{"index": 0, "card": cards[0] if cards else None},
                  {"index": 1, "card": cards[1] if len(cards) > 1 else None}],
        "shelf": cards[2:],
        "criteria": criteria if criteria is not None else study_criteria(study),
        "progress": annotator_progress(study, request.user), "notice": notice,
        "instructions": instructions_html(study.instructions), "strings": _script_strings(),
    }
    template = "annotating/partials/screen.html" if request.htmx else "annotating/work.html"
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
        "response": _("Response %(letter)s"),
        "opened": _("Response %(letter)s, opened"),
        "read": _("Response %(letter)s, read to the end"),
        "question": _("Now ranking: %(criterion)s"),
    }


@transaction.non_atomic_requests
@login_required
@require_GET
def work(request, slug):
    """GET resumes the current item or leases the next: reloading the page changes nothing."""
    return _screen(request, annotator_study(request.user, slug))


def _refused(request, study, exc):
    if request.htmx:
        # The annotator's placements stay on screen: only the message area is replaced.
        reply = render(request, "annotating/partials/message.html", {"study": study, "refusal": exc})
        return reswap(retarget(reply, "#rank-message"), "innerHTML")
    messages.error(request, exc.message)
    return redirect("annotate_work", study.slug)


def _act(request, study, action, criteria=None, notice=""):
    """Run a submit, skip or flag on the annotator's own assignment: another's (or a missing one)
    is a 404, a refusal is shown in place. Then htmx gets the next screen in place (with `notice`
    said above it); a plain POST a redirect."""
    try:
        action()
    except Assignment.DoesNotExist:
        raise Http404 from None
    except services.AssignmentRefused as exc:
        return _refused(request, study, exc)
    if request.htmx:
        return _screen(request, study, criteria=criteria, notice=notice)
    if notice:
        messages.info(request, notice)
    return redirect("annotate_work", study.slug)


@transaction.non_atomic_requests
@login_required
@require_POST
def submit(request, slug, public_id):
    study = annotator_study(request.user, slug)
    criteria = study_criteria(study)
    rankings = services.rankings_from_form(criteria, request.POST)
    return _act(request, study, lambda: services.submit_ranking(
        _own(request, study, public_id), rankings, rationale=request.POST.get("rationale", ""),
        criteria=criteria, reading=services.reading_from_form(request.POST)), criteria)


@transaction.non_atomic_requests
@login_required
@require_POST
def skip(request, slug, public_id):
    study = annotator_study(request.user, slug)
    return _act(request, study, lambda: services.skip_assignment(_own(request, study, public_id)),
                notice=_("Skipped. The item comes back after the others, so you can still rank it later."))


@transaction.non_atomic_requests
@login_required
@require_POST
def flag(request, slug, public_id):
    study = annotator_study(request.user, slug)
    return _act(request, study, lambda: services.flag_assignment(
        _own(request, study, public_id), request.POST.get("flag_reason", "")))


@login_required
@require_GET
def done(request, slug):
    """Nothing left for this annotator: thanks, and the completion code or link for crowd platforms."""
    study = annotator_study(request.user, slug)
    progress = annotator_progress(study, request.user)
    remaining = has_work(study, request.user)  # the home page's Continue asks the same question
    skipped = skipped_waiting(study, request.user) if remaining else 0
    finished = not remaining and progress.done > 0
    if finished:
        membership = Membership.objects.get(study=study, user=request.user)
        services.complete_membership(membership)
    return render(request, "annotating/done.html", {
        "study": study, "progress": progress, "remaining": remaining, "finished": finished, "skipped": skipped,
        "answered": not remaining and question_answered(study)})


# --- Researchers: progress, invitations, crowd settings, attention checks --------------------------

CROWD_QUERY = {
    CrowdPlatform.PROLIFIC: "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}",
    CrowdPlatform.MTURK: "?worker_id=WORKER_ID&assignment_id=ASSIGNMENT_ID",
}


@login_required
def progress(request, slug):
    study = researcher_study(request.user, slug)
    invite = request.build_absolute_uri(reverse("join", args=[study.invite_token]))
    crowd_query = CROWD_QUERY.get(study.crowd_platform)
    return render(request, "annotating/study_progress.html", {
        "study": study, "progress": study_progress(study), "screen_balance": study_screen_balance(study),
        "invite_link": invite, "crowd_link": invite + crowd_query if crowd_query else "",
        "settings_form": AnnotationSettingsForm(instance=study),
        "crowd": crowd_participants(study),
    })


@login_required
@require_GET
def crowd_participants_csv(request, slug):
    """The study's crowd participants, to check against the platform's own list of submissions."""
    study = researcher_study(request.user, slug)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["platform", "participant_id", "session_id", "started_at", "last_seen_at", "completed_at",
                     "rankings_submitted", "label"])
    for p in crowd_participants(study):
        row = [p.platform, p.participant_id, p.session_id, _iso(p.started_at), _iso(p.last_seen_at),
               _iso(p.completed_at), p.submitted, p.label]
        writer.writerow([csv_cell(v) for v in row])  # ids may start with "-": never a formula
    reply = HttpResponse(out.getvalue().encode(), content_type="text/csv; charset=utf-8")
    reply["Content-Disposition"] = f'attachment; filename="{study.slug}-crowd-participants.csv"'
    return reply


def _iso(moment):
    return moment.isoformat() if moment else ""


@login_required
@require_POST
def release_crowd_participant(request, slug, pk):
    """Let a crowd participant continue in another browser (the next one to open their link)."""
    study = researcher_study(request.user, slug)
    try:
        services.release_crowd_participant(study, pk)
    except CrowdParticipant.DoesNotExist:
        raise Http404 from None
    messages.success(request, "Released: the participant may now continue in another browser.")
    return redirect(reverse("study_progress", args=[study.slug]) + "#crowd")


@login_required
@require_POST
def annotation_settings(request, slug):
    study = researcher_study(request.user, slug)
    form = AnnotationSettingsForm(request.POST, instance=study)
    if form.is_valid():
        services.update_annotation_settings(study, **form.cleaned_data)
        messages.success(request, "Annotator settings saved.")
    else:
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
    return redirect("study_progress", study.slug)


@login_required
@require_POST
def new_invite_link(request, slug):
    study = researcher_study(request.user, slug)
    services.new_invite_link(study)
    messages.success(request, "A new invitation link was made; the old one no longer works.")
    return redirect("study_progress", study.slug)


@login_required
@require_POST
def attention_check(request, slug, external_id):
    """Mark an item as an attention check (or clear it) from the item page."""
    study = researcher_study(request.user, slug)
    item = get_object_or_404(Item, study=study, external_id=external_id)
    if request.POST.get("clear"):
        services.clear_attention_check(item)
        messages.success(request, f"Item {item.external_id} is no longer an attention check.")
    else:
        form = AttentionCheckForm(request.POST, systems=study.systems.values_list("name", flat=True))
        if form.is_valid():
            try:
                services.set_attention_check(item, form.cleaned_data["system"], form.cleaned_data["rule"])
            except services.AttentionCheckInvalid as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, f"Item {item.external_id} is now an attention check.")
        else:
            messages.error(request, "Choose a system and a rule.")
    return redirect("item_detail", study.slug, item.external_id)
