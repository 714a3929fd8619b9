"""Annotators at work: joining a study, leases, quotas, rankings, skips, flags, attention checks.

Every write of this area is a named function here; views and commands call them. Safe under
concurrency on PostgreSQL.

Locking, in one order everywhere so that no two requests wait on each other in a cycle:
membership (one annotator's requests, one at a time) -> assignment -> item. Whatever changes how
many live assignments an item has (a new lease, a renewed lease, a late submission) holds the
item's row lock and counts again in a fresh statement before writing, so the quota holds even
when two requests saw the same stale count; a candidate found full that way is given up by
rolling back the whole attempt, so no request ever waits for an item while holding another.
Locks are FOR NO KEY UPDATE, so inserting rows that merely reference a locked item never waits.
"""
import hashlib
import hmac
import json
import math
import random
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from annotations.models import (
    Assignment, AttentionRule, Criterion, CrowdParticipant, CrowdPlatform, Item, Membership, Ranking, Response,
    Study, System,
)
from annotations.models import _token as _invite_token
from annotations.studies.selectors import question_answered

from .selectors import candidate_item, live_count as _taken, row_locks, run_sql, screen_plan

MAX_RATIONALE_CHARS = 2000
MAX_FLAG_REASON_CHARS = 2000
# Candidates tried when the first ones turn out full after locking (a stale count); then give up.
MAX_CANDIDATES = 20
LETTERS = "ABCDEFGHIJKL"  # responses_per_screen is at most 12

_rng = random.SystemRandom()


class AssignmentRefused(Exception):
    """The request cannot be carried out; `message` says why, in the annotator's language."""

    def __init__(self, message, code):
        self.message = message
        self.code = code
        super().__init__(message)


class RankingInvalid(AssignmentRefused):
    """A submitted ranking is incomplete or does not match the responses shown."""


class NotAnnotator(Exception):
    """The user is not an annotator of the study."""


@dataclass(frozen=True)
class Ref:
    """An assignment as an annotator's URL names it. Services look it up under their own row lock,
    so a view need not read it first; an unknown one raises Assignment.DoesNotExist."""

    study: Study
    annotator_id: int
    public_id: str


def _lookup(assignment):
    if isinstance(assignment, Ref):
        return {"study_id": assignment.study.pk, "annotator_id": assignment.annotator_id,
                "public_id": assignment.public_id}
    return {"pk": assignment.pk}


# The annotator's membership (locked: one annotator's requests run one at a time) and current lease.
_MEMBER = """
    SELECT m.id, (SELECT a.id FROM {assignment} a WHERE a.study_id = m.study_id
                  AND a.annotator_id = m.user_id AND a.status = '{active}' ORDER BY a.id LIMIT 1)
    FROM {membership} m WHERE m.study_id = %s AND m.user_id = %s AND m.role = 'annotator' {lock}"""


def _lock_membership(study, user):
    """Lock the annotator's membership; return the id of their active assignment, if any."""
    rows = run_sql(_MEMBER, [study.pk, user.pk], lock="FOR NO KEY UPDATE OF m" if row_locks() else "")
    if not rows:
        raise NotAnnotator(f"{user} is not an annotator of {study.slug}")
    return rows[0][1]


def draw_display(item, k, screen=None):
    """k of the item's responses in display order, with fresh opaque handles.

    `screen` is the study design's choice (system ids in slot order; see ScreenPlan): each system
    it names keeps its slot, and a slot whose system has no response to this item is filled at
    random from the item's other responses. Without a design the choice and the order are random.
    An attention check's planted response is always among those shown, or the check would say
    nothing: absent from the design's screen, it takes a slot left empty, or a random one.
    Returns (handles in display order, handle -> response id, response id -> text).
    """
    responses = list(Response.objects.filter(item=item).order_by().values_list("pk", "system_id", "text"))
    must = item.attention_system_id
    n = min(k, len(responses))
    if screen is None:
        chosen = [r for r in responses if r[1] == must][:1]
        chosen += _rng.sample([r for r in responses if r[1] != must], n - len(chosen))
        _rng.shuffle(chosen)
    else:
        by_system = {r[1]: r for r in responses}
        chosen = [by_system.get(system) for system in screen]
        if must in by_system and by_system[must] not in chosen:
            empty = [i for i, r in enumerate(chosen) if r is None]
            chosen[_rng.choice(empty or range(len(chosen)))] = by_system[must]
        rest = [r for r in responses if r not in chosen]
        _rng.shuffle(rest)
        chosen = [r if r is not None else rest.pop() if rest else None for r in chosen]
        chosen = [r for r in chosen if r is not None][:n]
    handles = {}
    while len(handles) < len(chosen):  # a repeated 72-bit token is near impossible; never reuse one
        handles[secrets.token_urlsafe(9)] = None
    order = list(handles)
    return order, {h: pk for h, (pk, _s, _t) in zip(order, chosen)}, {pk: text for pk, _s, text in chosen}


class _StaleCandidate(Exception):
    """The item looked free but was full once locked; try again without it (and without its lock)."""

    def __init__(self, item_id):
        self.item_id = item_id


def next_assignment(study, user, *, now=None):
    """The annotator's current assignment, or a new one; None when nothing is left for them.

    An unexpired lease is resumed as it was (same responses, same order). An expired one is
    renewed when its item's quota still allows, so an annotator who comes back finds the same
    screen; otherwise it is marked expired and a new item is drawn. A new assignment is made when
    its screen is rendered, so its first_shown_at (the start of time on task) is set here; it
    carries the shown texts (`shown_texts`) so that the screen needs no second look-up.
    """
    now = now or timezone.now()
    if study.status != Study.Status.OPEN:
        return None
    full = set()
    for _attempt in range(MAX_CANDIDATES):
        try:
            with transaction.atomic():
                return _lease(study, user, now, full)
        except _StaleCandidate as stale:
            # Rolling back released every lock this attempt held, so no request ever waits for
            # an item while holding another one (no deadlocks).
            full.add(stale.item_id)
    return None


def _lease(study, user, now, full):
    lease = timedelta(minutes=study.lease_minutes)
    current_id = _lock_membership(study, user)
    if current_id is not None:
        assignment = (Assignment.objects.select_for_update(no_key=True, of=("self",)).select_related("item")
                      .get(pk=current_id))
        if assignment.expires_at > now:
            return assignment
        Item.objects.select_for_update(no_key=True).filter(pk=assignment.item_id).first()
        if _taken(assignment.item_id, now, exclude=assignment.pk) < study.annotations_per_item:
            assignment.leased_at, assignment.expires_at = now, now + lease
            assignment.save(update_fields=["leased_at", "expires_at"])
            return assignment
        assignment.status = Assignment.Status.EXPIRED
        assignment.save(update_fields=["status"])

    if question_answered(study):  # the study stopped itself: its question is answered
        return None
    item = candidate_item(study, user, now, exclude=full, lock="skip")
    if item is None:
        # Every candidate may be locked by someone leasing it this instant: wait for one rather
        # than telling this annotator that nothing is left.
        item = candidate_item(study, user, now, exclude=full, lock="wait")
        if item is None:
            return _lease_skipped(study, user, now, lease, full)
    # Counted again under the lock: the candidate query may have read a stale count.
    taken = _taken(item.pk, now)
    if taken >= study.annotations_per_item:
        raise _StaleCandidate(item.pk)
    # The item's lock makes `taken` this lease's own number: its design screen (see ScreenPlan).
    order, handles, texts = draw_display(item, study.responses_per_screen,
                                         screen_plan(study).screen(item.pk, taken))
    assignment = Assignment.objects.create(
        study=study, item=item, annotator=user, shown_handles=order, handles=handles,
        leased_at=now, expires_at=now + lease, first_shown_at=now,
    )
    assignment.shown_texts = texts
    return assignment


def _lease_skipped(study, user, now, lease, full):
    """Nothing new is left: the annotator's skipped items come back, the longest waiting first.

    The same assignment row is made active again (an annotator never has two rows for one item), with
    the same responses in the same order, while its item's quota still allows. Like a new lease, it
    waits for one item's lock only, and gives way (_StaleCandidate) when that item turns out full.
    """
    skipped = (Assignment.objects.filter(study=study, annotator=user, status=Assignment.Status.SKIPPED)
               .exclude(item_id__in=full).order_by("leased_at", "pk").values_list("pk", "item_id"))
    for pk, item_id in skipped[:MAX_CANDIDATES]:
        if _taken(item_id, now, exclude=pk) >= study.annotations_per_item:
            continue
        assignment = (Assignment.objects.select_for_update(no_key=True, of=("self",)).select_related("item")
                      .get(pk=pk))
        Item.objects.select_for_update(no_key=True).filter(pk=item_id).first()
        if assignment.status != Assignment.Status.SKIPPED or \
                _taken(item_id, now, exclude=pk) >= study.annotations_per_item:
            raise _StaleCandidate(item_id)
        assignment.status = Assignment.Status.ACTIVE
        assignment.leased_at, assignment.expires_at, assignment.first_shown_at = now, now + lease, now
        assignment.save(update_fields=["status", "leased_at", "expires_at", "first_shown_at"])
        return assignment
    return None


# --- Rankings ---------------------------------------------------------------------------------

def rankings_from_form(criteria, data):
    """Read `rank-<criterion>` fields (JSON lists of tie groups of handles); unreadable means empty."""
    rankings = {}
    for criterion in criteria:
        try:
            value = json.loads(data.get(f"rank-{criterion.name}") or "[]")
        except (TypeError, ValueError):
            value = []
        rankings[criterion.name] = value
    return rankings


def check_rankings(assignment, study, criteria, rankings):
    """Tie groups of handles per criterion, every shown response placed exactly once; else RankingInvalid."""
    shown = list(assignment.shown_handles)
    letter = {handle: LETTERS[i] for i, handle in enumerate(shown)}
    checked = {}
    for criterion in criteria:
        groups = rankings.get(criterion.name)
        label = criterion.label or criterion.name
        if not isinstance(groups, list) or not all(
                isinstance(g, list) and g and all(isinstance(h, str) for h in g) for g in groups):
            groups = []
        placed = [h for g in groups for h in g]
        if len(placed) != len(set(placed)) or set(placed) - set(shown):
            raise RankingInvalid(
                _("The ranking for “%(criterion)s” does not match the responses on this screen. "
                  "Reload the page and place them again.") % {"criterion": label}, "mismatch")
        missing = [letter[h] for h in shown if h not in set(placed)]
        if missing:
            raise RankingInvalid(
                _("Place every response for “%(criterion)s” before you submit: %(missing)s "
                  "not placed yet.") % {
                    "criterion": label,
                    "missing": ", ".join(_("Response %(letter)s") % {"letter": m} for m in missing)},
                "incomplete")
        if not study.allow_ties and any(len(g) > 1 for g in groups):
            raise RankingInvalid(
                _("This study does not allow ties: put the responses for “%(criterion)s” in a strict "
                  "order.") % {"criterion": label}, "ties")
        checked[criterion.name] = groups
    return checked


def attention_passed(item, system_groups):
    """Whether one ranking of the item (tie groups of system ids, best first) meets its attention check.

    `first` and `last` need the planted response alone at that end; `not_first` needs it outside
    the top group. None when the item is no check, or its planted response was not shown.
    """
    system_id, rule = item.attention_system_id, item.attention_rule
    if system_id is None or not any(system_id in g for g in system_groups):
        return None
    if rule == AttentionRule.NOT_FIRST:
        return system_id not in system_groups[0]
    if rule == AttentionRule.FIRST:
        return system_groups[0] == [system_id]
    if rule == AttentionRule.LAST:
        return system_groups[-1] == [system_id]
    return None


# How the screen was read, as the browser reports it: {handle: {"seconds", "opened", "read_to_end"}}.
MAX_READING_CHARS = 20_000
MAX_READING_SECONDS = 24 * 3600


def reading_from_form(data):
    """The `reading` field (JSON); unreadable, too long or not an object means nothing was reported."""
    raw = data.get("reading") or ""
    if len(raw) > MAX_READING_CHARS:
        return {}
    try:
        value = json.loads(raw or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def check_reading(reading, to_system, shown_handles):
    """The browser's reading report keyed by system id (a string, as JSON keys are): unknown handles
    and malformed entries are dropped, seconds bounded. Once anything was reported, every shown
    response has an entry, so "not opened" is stored as such rather than left out."""
    checked = {}
    for handle, entry in (reading or {}).items():
        if handle not in to_system or not isinstance(entry, dict):
            continue
        seconds = entry.get("seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
            continue
        checked[str(to_system[handle])] = {
            "seconds": round(min(max(float(seconds), 0.0), MAX_READING_SECONDS), 1),
            "opened": entry.get("opened") is True, "read_to_end": entry.get("read_to_end") is True}
    if checked:
        for handle in shown_handles:
            checked.setdefault(str(to_system[handle]), {"seconds": 0.0, "opened": False, "read_to_end": False})
    return checked


@dataclass
class Submission:
    assignment: Assignment
    created: bool  # False when this repeated an earlier submission (nothing new was stored)


def submit_ranking(assignment, rankings, *, rationale="", criteria=None, reading=None, now=None):
    """Store the annotator's rankings (one per criterion) for an assignment, exactly once, with how
    the screen was read (`reading`, as the browser reported it by handle; see check_reading).

    A repeated submission returns the first one's result. A submission after the lease expired
    is kept when the item's quota still allows; otherwise it is refused and nothing is written
    over what others submitted.
    """
    now = now or timezone.now()
    try:
        return _submit(assignment, rankings, rationale, criteria, reading, now)
    except IntegrityError:
        # Only an imported ranking under the same label can collide; it is never overwritten.
        raise AssignmentRefused(_("A ranking of this item under your name is already stored."),
                                "duplicate") from None


def _submit(assignment, rankings, rationale, criteria, reading, now):
    late_refused = False
    with transaction.atomic():
        # of=self: lock the assignment only, never the study row that every submission shares.
        study = assignment.study
        assignment = (Assignment.objects.select_for_update(no_key=True, of=("self",))
                      .select_related("item").get(**_lookup(assignment)))
        assignment.study = study
        if assignment.status == Assignment.Status.SUBMITTED:
            return Submission(assignment, created=False)
        if assignment.status in (Assignment.Status.SKIPPED, Assignment.Status.FLAGGED):
            raise AssignmentRefused(
                _("You skipped or flagged this item, so a ranking for it can no longer be sent."), "released")
        criteria = list(criteria) if criteria is not None else list(Criterion.objects.filter(study=study))
        groups = check_rankings(assignment, study, criteria, rankings)
        if assignment.status == Assignment.Status.EXPIRED or assignment.expires_at <= now:
            Item.objects.select_for_update(no_key=True).filter(pk=assignment.item_id).first()
            if _taken(assignment.item_id, now, exclude=assignment.pk) >= study.annotations_per_item:
                assignment.status = Assignment.Status.EXPIRED
                assignment.save(update_fields=["status"])
                late_refused = True
        if not late_refused:
            _store_rankings(assignment, study, criteria, groups, rationale, reading, now)
    if late_refused:
        raise AssignmentRefused(
            _("Your time for this item ran out and it has since been ranked by enough other annotators, "
              "so your ranking was not stored. Thank you; please continue with the next item."), "late")
    return Submission(assignment, created=True)


def _store_rankings(assignment, study, criteria, groups, rationale, reading, now):
    system_of = dict(Response.objects.filter(pk__in=assignment.handles.values()).order_by()
                     .values_list("pk", "system_id"))
    to_system = {handle: system_of.get(pk) for handle, pk in assignment.handles.items()}
    if None in to_system.values():
        raise AssignmentRefused(_("A response on this screen was removed by the researchers. "
                                  "Skip this item, please."), "gone")
    shown_systems = [to_system[h] for h in assignment.shown_handles]
    seconds = (now - (assignment.first_shown_at or assignment.leased_at)).total_seconds()
    label = Ranking.site_label(assignment.annotator_id)
    rows = []
    for criterion in criteria:
        system_groups = [[to_system[h] for h in group] for group in groups[criterion.name]]
        rows.append(Ranking(
            study=study, item_id=assignment.item_id, criterion=criterion, assignment=assignment,
            annotator_id=assignment.annotator_id, annotator_label=label, ranking=system_groups,
            display_order=shown_systems, seconds=seconds, source=Ranking.Source.ANNOTATED,
            attention_passed=attention_passed(assignment.item, system_groups),
        ))
    Ranking.objects.bulk_create(rows)
    assignment.status = Assignment.Status.SUBMITTED
    assignment.submitted_at = now
    assignment.seconds = seconds
    assignment.rationale = (rationale or "").strip()[:MAX_RATIONALE_CHARS]
    assignment.reading = check_reading(reading, to_system, assignment.shown_handles)
    assignment.save(update_fields=["status", "submitted_at", "seconds", "rationale", "reading"])
    Item.objects.filter(pk=assignment.item_id).update(rankings_done=F("rankings_done") + 1)


# --- Skip and flag ---------------------------------------------------------------------------

def skip_assignment(assignment):
    """The annotator passes on this item; it returns to the pool for others, and to them once
    nothing new is left (see _lease_skipped)."""
    return _release(assignment, Assignment.Status.SKIPPED, "")


def flag_assignment(assignment, reason):
    """The annotator reports a broken or harmful response; the item returns to the pool and the
    researchers see the reason on the study's progress page."""
    reason = (reason or "").strip()[:MAX_FLAG_REASON_CHARS]
    if not reason:
        raise AssignmentRefused(_("Say briefly what is wrong with this item, then flag it."), "reason")
    return _release(assignment, Assignment.Status.FLAGGED, reason)


def _release(assignment, status, reason):
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update(no_key=True).get(**_lookup(assignment))
        if assignment.status == status:
            return assignment
        if assignment.status not in (Assignment.Status.ACTIVE, Assignment.Status.EXPIRED):
            raise AssignmentRefused(_("Your ranking of this item was already sent."), "submitted")
        assignment.status = status
        assignment.flag_reason = reason
        assignment.save(update_fields=["status", "flag_reason"])
        return assignment


def complete_membership(membership, *, now=None):
    """Record when a (crowd) annotator finished the study; the first time only."""
    if membership.completed_at is None:
        now = now or timezone.now()
        Membership.objects.filter(pk=membership.pk, completed_at__isnull=True).update(completed_at=now)
        membership.completed_at = now
    return membership


# --- Attention checks (researchers) ------------------------------------------------------------

class AttentionCheckInvalid(Exception):
    pass


def set_attention_check(item, system_name, rule):
    """Mark an item as an attention check: the named system's response must meet `rule`.

    Rankings already stored for the item are scored again against the new check, so pass rates
    never mix old and new expectations, and the study's leaderboards are marked stale (who is
    left out for failed checks may change).
    """
    if rule not in AttentionRule.values:
        raise AttentionCheckInvalid(f"unknown rule '{rule}'; use one of {', '.join(AttentionRule.values)}")
    system = System.objects.filter(study_id=item.study_id, name=system_name).first()
    if system is None:
        names = ", ".join(System.objects.filter(study_id=item.study_id).values_list("name", flat=True))
        raise AttentionCheckInvalid(f"no system '{system_name}' in this study; systems: {names or 'none'}")
    if not Response.objects.filter(item=item, system=system).exists():
        raise AttentionCheckInvalid(f"system '{system_name}' has no response to item '{item.external_id}'")
    with transaction.atomic():
        item.attention_system, item.attention_rule = system, rule
        item.save(update_fields=["attention_system", "attention_rule"])
        _rescore(item)
    return item


def clear_attention_check(item):
    with transaction.atomic():
        item.attention_system, item.attention_rule = None, ""
        item.save(update_fields=["attention_system", "attention_rule"])
        _rescore(item)
    return item


def _rescore(item):
    for ranking in Ranking.objects.filter(item=item, source=Ranking.Source.ANNOTATED).only("ranking"):
        Ranking.objects.filter(pk=ranking.pk).update(attention_passed=attention_passed(item, ranking.ranking))
    item.study.figures_changed()


# --- Joining a study -----------------------------------------------------------------------------

# Crowd accounts are named after their platform; nobody may sign up under those names (to avoid
# confusion only: the crowd link logs in by CrowdParticipant record, never by name).
CROWD_PREFIXES = {CrowdPlatform.PROLIFIC: "prolific-", CrowdPlatform.MTURK: "mturk-"}
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Query parameters the platforms put in the link (MTurk-style: several spellings in use).
PROLIFIC_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
MTURK_ID_PARAMS = ("worker_id", "workerId", "WORKER_ID")
MTURK_SESSION_PARAMS = ("assignment_id", "assignmentId", "ASSIGNMENT_ID")


class JoinRefused(Exception):
    """A join the annotator cannot make; `status` is the HTTP status their refusal page answers."""

    def __init__(self, message, status=400):
        self.message = message
        self.status = status
        super().__init__(message)


def is_reserved_username(username):
    return any(username.lower().startswith(prefix) for prefix in CROWD_PREFIXES.values())


def crowd_identity(study, params):
    """(external_id, session) when the link carries the study's crowd platform's id, else None."""
    if study.crowd_platform == CrowdPlatform.PROLIFIC:
        external_id = params.get("PROLIFIC_PID")
        session = params.get("SESSION_ID", "")
    elif study.crowd_platform == CrowdPlatform.MTURK:
        external_id = next((params[p] for p in MTURK_ID_PARAMS if params.get(p)), None)
        session = next((params[p] for p in MTURK_SESSION_PARAMS if params.get(p)), "")
    else:
        return None
    if not external_id:
        return None
    return external_id.strip(), (session or "").strip()[:200]


def join_study(study, user):
    """Make the user an annotator of the study (a researcher of it stays a researcher)."""
    membership, _created = Membership.objects.get_or_create(
        study=study, user=user, defaults={"role": Membership.Role.ANNOTATOR})
    return membership


def hash_browser_secret(secret):
    # The secret is 32 random bytes: a plain digest is enough, and lets the look-up stay one compare.
    return hashlib.sha256(secret.encode()).hexdigest()


def crowd_participant_of(study, user):
    """The crowd record linking this user to this study, or None."""
    if not user.is_authenticated:
        return None
    return CrowdParticipant.objects.filter(study=study, user=user).first()


def is_crowd_user_for(study, user, external_id):
    """Whether `user` is already the account of this platform id (so opening the link again is no switch)."""
    return user.is_authenticated and CrowdParticipant.objects.filter(
        user=user, platform=study.crowd_platform, participant_id=external_id).exists()


def _may_log_in_as_crowd(user):
    """Only accounts the crowd link made itself: never staff, superusers, researchers, password holders."""
    return (user.is_active and not user.is_staff and not user.is_superuser and not user.has_usable_password()
            and not Membership.objects.filter(user=user, role=Membership.Role.RESEARCHER).exists())


def _crowd_rate_limited(study, address):
    """Count a new crowd account for this address and study; True once either is over its limit.

    A fixed window in Django's cache (shared Redis in deployment): per window of
    CROWD_JOIN_WINDOW_SECONDS, at most CROWD_JOIN_PER_ADDRESS new participants from one client
    address and CROWD_JOIN_PER_STUDY for one study. Only creations count; returning is free.
    """
    window = settings.CROWD_JOIN_WINDOW_SECONDS
    slot = int(time.time() // window)
    # The address first: one address over its limit must not use up the whole study's allowance.
    for key, limit in ((f"crowd-join:addr:{address}:{slot}", settings.CROWD_JOIN_PER_ADDRESS),
                       (f"crowd-join:study:{study.pk}:{slot}", settings.CROWD_JOIN_PER_STUDY)):
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
        # With the cache down (count None) nobody is counted: joining degrades to the study's cap.
        if (count or 0) > limit:
            return True
    return False


@dataclass
class CrowdEntry:
    user: object
    participant: CrowdParticipant
    new_secret: str = ""  # set when this browser just claimed the participant: the view sends it as a cookie


def _crowd_username(study, external_id):
    User = get_user_model()
    username = f"{CROWD_PREFIXES[study.crowd_platform]}{external_id}"
    while User.objects.filter(username=username).exists():  # taken by someone else: a name, not an identity
        username = f"{CROWD_PREFIXES[study.crowd_platform]}{external_id}-{secrets.token_hex(3)}"
    return username


def crowd_enter(study, external_id, session="", *, secret=None, address=""):
    """Let a crowd participant in: their own account, created on their first visit to the study.

    `secret` is the browser's secret from its cookie, if any. The first browser claims the
    participant (CrowdEntry.new_secret); another browser with the same id is refused until a
    researcher releases the participant. New participants count against the study's cap and the
    rate limits. Locks the study row (FOR NO KEY UPDATE) only while admitting someone new, so the
    cap holds under concurrent first visits; no other lock is held at that point.
    """
    if not EXTERNAL_ID.match(external_id or ""):
        raise JoinRefused(_("The participant id in this link is not valid. Open the study again from "
                             "the platform's page."))
    if study.status == Study.Status.CLOSED:
        raise JoinRefused(_("This study is closed and takes no more annotators."))
    key = {"study": study, "platform": study.crowd_platform, "participant_id": external_id}
    with transaction.atomic():
        participant = (CrowdParticipant.objects.select_for_update(no_key=True, of=("self",)).filter(**key)
                       .select_related("user").first())
        if participant is None:
            locked = Study.objects.select_for_update(no_key=True).get(pk=study.pk)
            participant = CrowdParticipant.objects.filter(**key).select_related("user").first()
        if participant is None:
            return _admit_crowd_participant(locked, external_id, session, address)
        return _return_crowd_participant(participant, session, secret)


def _admit_crowd_participant(study, external_id, session, address):
    if study.crowd_max_participants is not None and \
            CrowdParticipant.objects.filter(study=study).count() >= study.crowd_max_participants:
        raise JoinRefused(_("This study has all the participants it needs. Please return it on the "
                            "platform; thank you for your interest."), status=403)
    if _crowd_rate_limited(study, address):
        raise JoinRefused(_("Too many people are joining at once. Please wait a few minutes and open "
                            "the study again from the platform's page."), status=429)
    # The same person in an earlier study keeps their account (a Prolific id is one person).
    earlier = (CrowdParticipant.objects.filter(platform=study.crowd_platform, participant_id=external_id)
               .select_related("user").order_by("pk").first())
    if earlier is not None:
        user = earlier.user
        if not _may_log_in_as_crowd(user):
            raise JoinRefused(_("This participant id cannot be used here. Please ask the researcher."),
                              status=403)
    else:
        user = get_user_model()(username=_crowd_username(study, external_id))
        user.set_unusable_password()
        user.save()
    secret = secrets.token_urlsafe(32)
    participant = CrowdParticipant.objects.create(
        study=study, platform=study.crowd_platform, participant_id=external_id, user=user,
        session_id=session, secret_hash=hash_browser_secret(secret), last_seen_at=timezone.now())
    join_study(study, user)
    return CrowdEntry(user=user, participant=participant, new_secret=secret)


def _return_crowd_participant(participant, session, secret):
    user = participant.user
    if not _may_log_in_as_crowd(user):
        raise JoinRefused(_("This participant id cannot be used here. Please ask the researcher."), status=403)
    new_secret = ""
    if not participant.secret_hash:  # new since a release (or from before browsers were bound)
        new_secret = secrets.token_urlsafe(32)
        participant.secret_hash = hash_browser_secret(new_secret)
    elif not secret or not hmac.compare_digest(hash_browser_secret(secret), participant.secret_hash):
        raise JoinRefused(_("This participant already started in another browser. Please continue in the "
                            "browser where you started, or ask the researcher to let you continue here."),
                          status=403)
    if session:
        participant.session_id = session
    participant.last_seen_at = timezone.now()
    participant.save(update_fields=["secret_hash", "session_id", "last_seen_at"])
    join_study(participant.study, user)
    return CrowdEntry(user=user, participant=participant, new_secret=new_secret)


def release_crowd_participant(study, participant_pk):
    """A researcher lets a crowd participant continue in another browser: the next one to open the link."""
    released = CrowdParticipant.objects.filter(study=study, pk=participant_pk).update(secret_hash="")
    if not released:
        raise CrowdParticipant.DoesNotExist
    return released


@transaction.atomic
def sign_up_and_join(study, form):
    """Create an account from the join page's validated sign-up form and make it an annotator."""
    user = form.save()
    join_study(study, user)
    return user


def update_annotation_settings(study, *, crowd_platform, completion_code, completion_url,
                               crowd_max_participants=None):
    """A researcher changes how crowd annotators get in and finish, and how many may come."""
    study.crowd_platform = crowd_platform
    study.completion_code = completion_code.strip()
    study.completion_url = completion_url.strip()
    study.crowd_max_participants = crowd_max_participants
    study.save(update_fields=["crowd_platform", "completion_code", "completion_url",
                              "crowd_max_participants", "updated_at"])
    return study


def new_invite_link(study):
    """Replace the invitation token: links handed out before stop working."""
    study.invite_token = _invite_token()
    study.save(update_fields=["invite_token", "updated_at"])
    return study
