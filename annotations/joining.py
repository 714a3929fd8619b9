"""How annotators get into a study: an invitation link, or a crowd platform's link with their id.

Writes only; the join view calls these. Crowd annotators get a user without a usable password.
"""
import re

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from .models import CrowdPlatform, Membership, Study
from .models import _token as _invite_token

# Usernames of crowd annotators start with their platform; nobody may sign up under those names.
CROWD_PREFIXES = {CrowdPlatform.PROLIFIC: "prolific-", CrowdPlatform.MTURK: "mturk-"}
EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
# Query parameters the platforms put in the link (MTurk-style: several spellings in use).
PROLIFIC_PARAMS = ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")
MTURK_ID_PARAMS = ("worker_id", "workerId", "WORKER_ID")
MTURK_SESSION_PARAMS = ("assignment_id", "assignmentId", "ASSIGNMENT_ID")


class JoinRefused(Exception):
    def __init__(self, message):
        self.message = message
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


@transaction.atomic
def crowd_annotator(study, external_id, session=""):
    """The user for this platform id (created once, reused across studies) and their membership."""
    if not EXTERNAL_ID.match(external_id or ""):
        raise JoinRefused(_("The participant id in this link is not valid. Open the study again from "
                             "the platform's page."))
    if study.status == Study.Status.CLOSED:
        raise JoinRefused(_("This study is closed and takes no more annotators."))
    User = get_user_model()
    username = f"{CROWD_PREFIXES[study.crowd_platform]}{external_id}"
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User(username=username)
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same worker's link opened twice at once
            user = User.objects.get(username=username)
    membership = Membership.objects.filter(study=study, user=user).first()
    if membership is None:
        try:
            with transaction.atomic():
                membership = Membership.objects.create(
                    study=study, user=user, role=Membership.Role.ANNOTATOR,
                    external_id=external_id, external_session=session)
        except IntegrityError:
            membership = Membership.objects.get(study=study, user=user)
    elif session and membership.external_session != session:
        membership.external_session = session
        membership.save(update_fields=["external_session"])
    return user, membership


@transaction.atomic
def sign_up_and_join(study, form):
    """Create an account from the join page's validated sign-up form and make it an annotator."""
    user = form.save()
    join_study(study, user)
    return user


def update_annotation_settings(study, *, crowd_platform, completion_code, completion_url):
    """A researcher changes how crowd annotators get in and finish."""
    study.crowd_platform = crowd_platform
    study.completion_code = completion_code.strip()
    study.completion_url = completion_url.strip()
    study.save(update_fields=["crowd_platform", "completion_code", "completion_url",
                              "updated_at"])
    return study


def new_invite_link(study):
    """Replace the invitation token: links handed out before stop working."""
    study.invite_token = _invite_token()
    study.save(update_fields=["invite_token", "updated_at"])
    return study
