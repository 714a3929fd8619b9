"""Reads of the annotators' area: which item an annotator may get next and which systems its screen
shows, their studies and progress, and a study's progress for its researchers. Nothing here writes
(the leasing services lock what they read through candidate_item); a lease past its expiry is
reported as expired, not changed.
"""
import hashlib
import hmac
import math
import statistics
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max, Min, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from annotations.metrics import balanced_screens, screen_balance
from annotations.models import Assignment, CrowdParticipant, Item, Membership, Ranking, Response, Study, System
from annotations.studies.selectors import question_answered


# The hot path (every submission leases the next item) is plain SQL: the ORM spent more time
# building these statements than PostgreSQL spent running them. The SQL is the same on SQLite
# (the embedded demo), less the row locks, which SQLite's single writer makes unnecessary.
_TABLES = {"item": Item._meta.db_table, "response": Response._meta.db_table,
           "assignment": Assignment._meta.db_table, "membership": Membership._meta.db_table}
# Items this annotator may be given, fewest completed rankings first, read in the order of the
# index (study, rankings_done, id): the first eligible item is found after a few rows however
# many the study has. Only the site's own assignments count; imported rankings use no quota.
_CANDIDATE = """
    SELECT i.id, i.external_id, i.prompt, i.attention_system_id, i.attention_rule FROM {item} i
    WHERE i.study_id = %s
      AND (SELECT COUNT(*) FROM {response} r WHERE r.item_id = i.id) >= 2
      AND (SELECT COUNT(*) FROM {assignment} a WHERE a.item_id = i.id AND {live}) < %s
      AND NOT EXISTS (SELECT 1 FROM {assignment} a WHERE a.item_id = i.id AND a.annotator_id = %s)
      {exclude}
    ORDER BY i.rankings_done, i.id
    LIMIT 1 {lock}"""
_TAKEN = "SELECT COUNT(*) FROM {assignment} a WHERE a.item_id = %s AND {live} AND a.id <> %s"


def run_sql(sql, params, **parts):
    """Run one of this area's SQL statements (table names and the live-assignment rule filled in)."""
    with connection.cursor() as cursor:
        cursor.execute(sql.format(live=Assignment.LIVE_SQL, active=Assignment.Status.ACTIVE, **_TABLES,
                                  **parts), params)
        return cursor.fetchall()


def row_locks():
    return connection.vendor == "postgresql"


def _moment(now):
    return connection.ops.adapt_datetimefield_value(now)


def candidate_item(study, user, now, *, exclude=(), lock=None):
    """The next item for this annotator, or None. lock: None, "skip" (skip locked rows) or "wait".

    The item comes back with its external id, prompt and attention check: all that a lease needs.
    """
    lock_sql = ""
    if lock and row_locks():
        lock_sql = "FOR NO KEY UPDATE OF i" + (" SKIP LOCKED" if lock == "skip" else "")
    exclude = list(exclude)
    exclude_sql = f"AND i.id NOT IN ({', '.join(['%s'] * len(exclude))})" if exclude else ""
    rows = run_sql(_CANDIDATE, [study.pk, _moment(now), study.annotations_per_item, user.pk, *exclude],
                   exclude=exclude_sql, lock=lock_sql)
    if not rows:
        return None
    pk, external_id, prompt, attention_system_id, attention_rule = rows[0]
    return Item(pk=pk, study_id=study.pk, external_id=external_id, prompt=prompt,
                attention_system_id=attention_system_id, attention_rule=attention_rule)


def live_count(item_id, now, exclude=None):
    """How many live assignments (submitted, or leased and unexpired) the item has."""
    return run_sql(_TAKEN, [item_id, _moment(now), -1 if exclude is None else exclude])[0][0]


# --- Which systems a new screen shows (design.md §3) --------------------------------------------
# A study's screens follow one fixed sequence, `balanced_screens` over its systems, seeded by a
# secret of the site so that nobody can work out which system sits in which slot. Lease number
# `taken` of an item (its live assignments so far) takes design screen
# taken x (items' id span) + (item's place in that span): each round of the study (every item's
# first ranking, then every item's second, ...) walks a stretch of consecutive design screens, and
# so does the whole study, so both balances hold midway as well as at the end. Nothing is written
# per lease: the design is cached in this process and in Django's cache.
SCREEN_PLAN_SECONDS = 60  # systems and items added to an open study count within a minute
SCREEN_DESIGN_PER_SYSTEM = 20  # design screens per system, at least: every pair meets several times
SCREEN_DESIGN_MAX = 1200  # beyond this a design costs more than a second to compute; then it stays ~20 K
_screen_plans = {}  # (study id, created_at, k) -> (good until, ScreenPlan)
_screen_designs = {}  # cache key -> design


@dataclass(frozen=True)
class ScreenPlan:
    systems: tuple  # the study's system ids, sorted
    first_item: int  # the smallest item id of the study, and how many ids its items span
    item_span: int
    screens: tuple  # the design: tuples of system ids in slot order, each min(k, systems) long

    def screen(self, item_id, taken):
        """System ids in slot order for lease number `taken` of an item; None without a design."""
        if not self.screens:
            return None
        return self.screens[(taken * self.item_span + item_id - self.first_item) % len(self.screens)]


def design_length(n_systems, k):
    """Screens in a study's design: a whole number of rounds in which every system can sit in every
    slot, and every pair share screens, equally often, at least SCREEN_DESIGN_PER_SYSTEM per system."""
    target = SCREEN_DESIGN_PER_SYSTEM * n_systems
    if k >= n_systems:
        return target  # a multiple of n_systems: a full rotation through the slots
    pairs, per_screen = math.comb(n_systems, 2), math.comb(k, 2)
    base = math.lcm(n_systems, pairs // math.gcd(pairs, per_screen))
    length = base * math.ceil(target / base)
    return length if length <= SCREEN_DESIGN_MAX else target


def _design_seed(study):
    digest = hmac.new(settings.SECRET_KEY.encode(), f"evalsite:screens:{study.pk}".encode(), hashlib.sha256)
    return int.from_bytes(digest.digest()[:8], "big")


def _design(study, systems, k):
    seed = _design_seed(study)
    length = design_length(len(systems), k)
    key = "evalsite:screens:" + hashlib.sha256(repr((seed, systems, k, length)).encode()).hexdigest()[:32]
    design = _screen_designs.get(key)
    if design is None:
        design = cache.get(key)
        if design is None:
            design = tuple(balanced_screens(systems, k, length, seed=seed))
            cache.set(key, design, 7 * 24 * 3600)  # deterministic: the cache only saves computing it again
        if len(_screen_designs) >= 256:
            _screen_designs.clear()
        _screen_designs[key] = design
    return design


def screen_plan(study):
    """The study's screen design and where its items sit in it; cached for SCREEN_PLAN_SECONDS."""
    key = (study.pk, study.created_at, study.responses_per_screen)
    hit = _screen_plans.get(key)
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    systems = tuple(sorted(System.objects.filter(study_id=study.pk).values_list("pk", flat=True)))
    span = Item.objects.filter(study_id=study.pk).aggregate(first=Min("pk"), last=Max("pk"))
    first, last = span["first"] or 0, span["last"] or 0
    screens = _design(study, systems, min(study.responses_per_screen, len(systems))) if systems else ()
    plan = ScreenPlan(systems=systems, first_item=first, item_span=last - first + 1, screens=screens)
    if len(_screen_plans) >= 1024:
        _screen_plans.clear()
    _screen_plans[key] = (time.monotonic() + SCREEN_PLAN_SECONDS, plan)
    return plan


def skipped_waiting(study, user, *, now=None):
    """How many of this annotator's skipped items could come back to them (their quota allows)."""
    now = now or timezone.now()
    return sum(1 for item_id, pk in Assignment.objects.filter(
        study=study, annotator=user, status=Assignment.Status.SKIPPED).values_list("item_id", "pk")
        if live_count(item_id, now, exclude=pk) < study.annotations_per_item)


def has_work(study, user, *, now=None):
    """Whether next_assignment would find something for this annotator (a read; locks nothing):
    an active lease, a new item, or an item they skipped that may come back."""
    now = now or timezone.now()
    if study.status != Study.Status.OPEN:
        return False
    if Assignment.objects.filter(study=study, annotator=user, status=Assignment.Status.ACTIVE).exists():
        return True
    if question_answered(study):  # set to stop when answered, and answered: no new items
        return False
    return candidate_item(study, user, now) is not None or skipped_waiting(study, user, now=now) > 0


def opened_all(reading):
    """Whether a stored reading report says every response was opened; None when none was reported."""
    if not reading:
        return None
    return all(isinstance(entry, dict) and entry.get("opened") for entry in reading.values())


def annotator_study(user, slug):
    """The study if this user annotates it; 404 otherwise, as if it did not exist."""
    return get_object_or_404(
        Study.objects.filter(memberships__user=user, memberships__role=Membership.Role.ANNOTATOR), slug=slug)


def study_criteria(study):
    """The study's criteria, cached: they never change once a study exists, and every screen needs them."""
    key = f"evalsite:criteria:{study.pk}"
    criteria = cache.get(key)
    if criteria is None:
        criteria = list(study.criteria.all())
        cache.set(key, criteria, 300)
    return criteria


def has_active_assignment(study, user):
    return Assignment.objects.filter(study=study, annotator=user, status=Assignment.Status.ACTIVE).exists()


@dataclass
class AnnotatorProgress:
    done: int
    total: int
    reported: int = 0  # items this annotator flagged as broken or harmful: they never come back

    @property
    def share(self):
        return self.done / self.total if self.total else 0.0

    @property
    def width(self):
        """The share as a whole percentage, for a bar's CSS width."""
        return round(min(1.0, self.share) * 100)


def annotator_progress(study, user):
    """Items this annotator has ranked in the study, of all its items. It is on every screen, so the
    study's item count is cached for a minute (an upload shows in the total within that minute)."""
    key = f"evalsite:items:{study.pk}"
    total = cache.get(key)
    if total is None:
        total = Item.objects.filter(study=study).count()
        cache.set(key, total, 60)
    sql = (f"SELECT COUNT(*) FILTER (WHERE status = %s), COUNT(*) FILTER (WHERE status = %s) "
           f"FROM {Assignment._meta.db_table} WHERE study_id = %s AND annotator_id = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [Assignment.Status.SUBMITTED.value, Assignment.Status.FLAGGED.value, study.pk, user.pk])
        done, reported = cursor.fetchone()
    return AnnotatorProgress(done=done, total=total, reported=reported)


@dataclass
class AnnotatorWork:
    """A study an annotator takes part in, for their home page."""
    study: object
    progress: AnnotatorProgress
    active: bool  # an assignment is waiting for them (resume rather than start)
    completed_at: object = None
    remaining: bool = False  # more to rank (new items, or skipped ones come back): what the done page says


def annotator_studies(user):
    memberships = (Membership.objects.filter(user=user, role=Membership.Role.ANNOTATOR)
                   .select_related("study").order_by("-created_at"))
    studies = [m.study for m in memberships]
    if not studies:
        return []
    done = dict(Assignment.objects.filter(annotator=user, study__in=studies, status=Assignment.Status.SUBMITTED)
                .values("study").annotate(n=Count("pk")).values_list("study", "n"))
    reported = dict(Assignment.objects.filter(annotator=user, study__in=studies, status=Assignment.Status.FLAGGED)
                    .values("study").annotate(n=Count("pk")).values_list("study", "n"))
    totals = dict(Item.objects.filter(study__in=studies).values("study").annotate(n=Count("pk"))
                  .values_list("study", "n"))
    now = timezone.now()
    active = set(Assignment.objects.filter(annotator=user, study__in=studies, status=Assignment.Status.ACTIVE,
                                           expires_at__gt=now).values_list("study", flat=True))
    return [
        AnnotatorWork(study=m.study, progress=AnnotatorProgress(done.get(m.study_id, 0), totals.get(m.study_id, 0),
                                                                reported.get(m.study_id, 0)),
                      active=m.study_id in active, completed_at=m.completed_at,
                      # The same rule as the done page, so that the two never disagree.
                      remaining=m.study_id in active or has_work(m.study, user, now=now))
        for m in memberships
    ]


@dataclass
class AnnotatorRow:
    username: str
    label: str
    external_id: str
    submitted: int = 0
    skipped: int = 0
    flagged: int = 0
    median_seconds: float | None = None
    unopened: int = 0  # rankings submitted without opening every response (as the browser reported)
    attention_passed: int = 0
    attention_checked: int = 0
    working_on: str = ""  # an item's external id while a lease is live

    @property
    def attention_rate(self):
        return self.attention_passed / self.attention_checked if self.attention_checked else None


@dataclass
class StudyProgress:
    items: int
    items_complete: int
    required: int  # rankings needed: items x annotations per item
    submitted: int
    active: list  # live leases: dicts with annotator, item, leased_at, expires_at
    expired: int  # leases that ran out without a submission
    median_seconds: float | None
    flagged: list  # flagged assignments, newest first
    annotators: list = field(default_factory=list)
    unopened: int = 0  # submitted without opening every response, of `reported_reading` that say how they read
    reported_reading: int = 0

    @property
    def share(self):
        return min(1.0, self.submitted / self.required) if self.required else 0.0

    @property
    def width(self):
        return round(self.share * 100)


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def study_progress(study, *, now=None):
    now = now or timezone.now()
    per_item = study.annotations_per_item
    items = Item.objects.filter(study=study).count()
    done_per_item = (Assignment.objects.filter(study=study, status=Assignment.Status.SUBMITTED)
                     .values("item").annotate(n=Count("pk")).values_list("n", flat=True))
    submitted_counts = list(done_per_item)
    assignments = Assignment.objects.filter(study=study)
    live_leases = list(
        assignments.filter(status=Assignment.Status.ACTIVE, expires_at__gt=now)
        .select_related("annotator", "item").order_by("leased_at"))
    expired = assignments.filter(
        Q(status=Assignment.Status.EXPIRED) | Q(status=Assignment.Status.ACTIVE, expires_at__lte=now)).count()
    flagged = list(assignments.filter(status=Assignment.Status.FLAGGED)
                   .select_related("annotator", "item").order_by("-leased_at"))

    rows = {}
    members = Membership.objects.filter(study=study, role=Membership.Role.ANNOTATOR).select_related("user")
    crowd_ids = dict(CrowdParticipant.objects.filter(study=study).values_list("user", "participant_id"))
    for m in members:
        rows[m.user_id] = AnnotatorRow(username=m.user.get_username(), label=Ranking.site_label(m.user_id),
                                       external_id=crowd_ids.get(m.user_id, ""))
    seconds = {}
    unopened = reported_reading = 0
    for user_id, status, secs, reading in assignments.values_list("annotator", "status", "seconds", "reading"):
        if status == Assignment.Status.SUBMITTED and reading:
            reported_reading += 1
            if not opened_all(reading):
                unopened += 1
                if user_id in rows:
                    rows[user_id].unopened += 1
        row = rows.get(user_id)
        if row is None:  # an annotator who has since left the study
            continue
        if status == Assignment.Status.SUBMITTED:
            row.submitted += 1
            seconds.setdefault(user_id, []).append(secs)
        elif status == Assignment.Status.SKIPPED:
            row.skipped += 1
        elif status == Assignment.Status.FLAGGED:
            row.flagged += 1
    for user_id, values in seconds.items():
        rows[user_id].median_seconds = _median(values)
    checks = (Ranking.objects.filter(study=study, source=Ranking.Source.ANNOTATED, attention_passed__isnull=False)
              .values("annotator").annotate(passed=Count("pk", filter=Q(attention_passed=True)), checked=Count("pk")))
    for entry in checks:
        row = rows.get(entry["annotator"])
        if row is not None:
            row.attention_passed, row.attention_checked = entry["passed"], entry["checked"]
    for lease in live_leases:
        if lease.annotator_id in rows:
            rows[lease.annotator_id].working_on = lease.item.external_id

    return StudyProgress(
        items=items,
        items_complete=sum(1 for n in submitted_counts if n >= per_item),
        required=items * per_item,
        submitted=sum(submitted_counts),
        active=live_leases,
        expired=expired,
        median_seconds=_median(assignments.filter(status=Assignment.Status.SUBMITTED)
                               .values_list("seconds", flat=True)),
        flagged=flagged,
        annotators=sorted(rows.values(), key=lambda r: (-r.submitted, r.username)),
        unopened=unopened, reported_reading=reported_reading,
    )


SCREEN_BALANCE_MAX = 50_000  # the most recent screens the progress page counts
SCREEN_BALANCE_SECONDS = 60


@dataclass
class ScreenBalance:
    """How evenly a study's screens (submitted and live assignments) spread systems over pairs and
    slots: spans are screen_balance's {"min", "max", "ratio"}; `pairs` is None when every screen
    shows every system (every pair always meets)."""
    screens: int
    systems: int
    slots: dict
    pairs: dict | None
    capped: bool  # only the most recent SCREEN_BALANCE_MAX screens were counted


def study_screen_balance(study, *, now=None):
    """The progress page's screen balance, or None before the first screen; cached for a minute."""
    key = f"evalsite:screen-balance:{study.pk}"
    balance = cache.get(key)
    if balance is not None:
        return balance or None
    now = now or timezone.now()
    recent = Assignment.objects.filter(study=study).live(now).order_by("-pk")[:SCREEN_BALANCE_MAX]
    shown = list(recent.values_list("shown_handles", "handles"))
    balance = ""  # cached as such: no screen yet
    if shown:
        system_of = dict(Response.objects.filter(item__in=recent.values("item_id")).values_list("pk", "system_id"))
        systems = sorted(System.objects.filter(study=study).values_list("pk", flat=True))
        # A response deleted since (a replaced upload) leaves its slot out rather than failing the page.
        screens = [[system_of[r] for r in (handles.get(h) for h in order) if r in system_of]
                   for order, handles in shown]
        spans = screen_balance(screens, systems)
        balance = ScreenBalance(screens=len(screens), systems=len(systems), slots=spans["slot_counts"],
                                pairs=spans["pair_counts"] if study.responses_per_screen < len(systems) else None,
                                capped=len(screens) == SCREEN_BALANCE_MAX)
    cache.set(key, balance, SCREEN_BALANCE_SECONDS)
    return balance or None


@dataclass
class CrowdParticipantRow:
    """One crowd participant, for the researcher to reconcile with the platform's own list."""
    pk: int
    platform: str
    participant_id: str
    session_id: str
    username: str
    label: str  # the annotator's label in rankings and exports
    started_at: object
    last_seen_at: object
    completed_at: object
    submitted: int
    bound: bool  # a browser holds the participant; another is refused until a release


def crowd_participants(study):
    participants = list(CrowdParticipant.objects.filter(study=study).select_related("user")
                        .order_by("created_at", "pk"))
    completed = dict(Membership.objects.filter(study=study, user__in=[p.user_id for p in participants])
                     .values_list("user", "completed_at"))
    submitted = dict(Assignment.objects.filter(study=study, status=Assignment.Status.SUBMITTED)
                     .values("annotator").annotate(n=Count("pk")).values_list("annotator", "n"))
    return [CrowdParticipantRow(pk=p.pk, platform=p.platform, participant_id=p.participant_id,
                                session_id=p.session_id, username=p.user.get_username(),
                                label=Ranking.site_label(p.user_id),
                                started_at=p.created_at, last_seen_at=p.last_seen_at,
                                completed_at=completed.get(p.user_id), submitted=submitted.get(p.user_id, 0),
                                bound=bool(p.secret_hash))
            for p in participants]
