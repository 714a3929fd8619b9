"""Crowd identities become their own records (CrowdParticipant), no longer a username pattern.

Existing crowd memberships (Membership.external_id) move into the new records, except those whose
account is staff, a superuser, a researcher or has a password: the crowd link never logs those in.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

PLATFORM_BY_PREFIX = {"prolific-": "prolific", "mturk-": "mturk"}


def crowd_memberships_to_participants(apps, schema_editor):
    Membership = apps.get_model("annotations", "Membership")
    CrowdParticipant = apps.get_model("annotations", "CrowdParticipant")
    researchers = set(Membership.objects.filter(role="researcher").values_list("user_id", flat=True))
    crowd = Membership.objects.exclude(external_id="").select_related("user", "study").order_by("pk")
    for membership in crowd:
        user = membership.user
        # An account that can log in otherwise was never made by the crowd link: leave it unlinked.
        if user.is_staff or user.is_superuser or user.pk in researchers or not user.password.startswith("!"):
            continue
        platform = next((p for prefix, p in PLATFORM_BY_PREFIX.items() if user.username.startswith(prefix)),
                        membership.study.crowd_platform)
        if platform not in PLATFORM_BY_PREFIX.values():
            continue
        participant = CrowdParticipant.objects.create(
            study=membership.study, platform=platform, participant_id=membership.external_id[:100],
            user=user, session_id=membership.external_session)
        CrowdParticipant.objects.filter(pk=participant.pk).update(created_at=membership.created_at)


def participants_to_crowd_memberships(apps, schema_editor):
    Membership = apps.get_model("annotations", "Membership")
    CrowdParticipant = apps.get_model("annotations", "CrowdParticipant")
    for participant in CrowdParticipant.objects.all():
        Membership.objects.filter(study_id=participant.study_id, user_id=participant.user_id).update(
            external_id=participant.participant_id, external_session=participant.session_id)


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0006_attention_check_by_key_figures_version_shown_handles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CrowdParticipant',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('platform', models.CharField(choices=[('none', 'None (invited or logged-in annotators)'), ('prolific', 'Prolific'), ('mturk', 'MTurk-style external id')], max_length=16)),
                ('participant_id', models.CharField(max_length=100)),
                ('session_id', models.CharField(blank=True, max_length=200)),
                ('secret_hash', models.CharField(blank=True, max_length=64)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('last_seen_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'ordering': ['study', 'created_at', 'id'],
            },
        ),
        migrations.AddField(
            model_name='study',
            name='crowd_max_participants',
            field=models.PositiveIntegerField(blank=True, help_text='The study admits no more crowd participants than this; empty for no limit.', null=True, verbose_name='Most crowd participants'),
        ),
        migrations.AddField(
            model_name='crowdparticipant',
            name='study',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='crowd_participants', to='annotations.study'),
        ),
        migrations.AddField(
            model_name='crowdparticipant',
            name='user',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='crowd_participants', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddIndex(
            model_name='crowdparticipant',
            index=models.Index(fields=['platform', 'participant_id'], name='crowd_participant_by_id'),
        ),
        migrations.AddConstraint(
            model_name='crowdparticipant',
            constraint=models.UniqueConstraint(fields=('study', 'platform', 'participant_id'), name='crowd_participant_unique_id'),
        ),
        migrations.AddConstraint(
            model_name='crowdparticipant',
            constraint=models.UniqueConstraint(fields=('study', 'user'), name='crowd_participant_unique_user'),
        ),
        migrations.AddConstraint(
            model_name='crowdparticipant',
            constraint=models.CheckConstraint(condition=models.Q(('platform__in', ['prolific', 'mturk'])), name='crowd_participant_platform_valid'),
        ),
        migrations.AddConstraint(
            model_name='crowdparticipant',
            constraint=models.CheckConstraint(condition=models.Q(('participant_id', ''), _negated=True), name='crowd_participant_id_not_empty'),
        ),
        migrations.RunPython(crowd_memberships_to_participants, participants_to_crowd_memberships),
        migrations.RemoveConstraint(
            model_name='membership',
            name='membership_unique_external_id',
        ),
        migrations.RemoveField(
            model_name='membership',
            name='external_id',
        ),
        migrations.RemoveField(
            model_name='membership',
            name='external_session',
        ),
    ]
