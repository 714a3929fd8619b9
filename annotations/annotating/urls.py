"""Routes of the annotators' area: joining and ranking, and the researchers' pages that oversee it."""
from django.urls import path

from . import views

urlpatterns = [
    path("join/<str:token>/", views.join, name="join"),
    path("annotate/<slug:slug>/", views.start, name="annotate_start"),
    path("annotate/<slug:slug>/work/", views.work, name="annotate_work"),
    path("annotate/<slug:slug>/done/", views.done, name="annotate_done"),
    path("annotate/<slug:slug>/<str:public_id>/submit/", views.submit, name="annotate_submit"),
    path("annotate/<slug:slug>/<str:public_id>/skip/", views.skip, name="annotate_skip"),
    path("annotate/<slug:slug>/<str:public_id>/flag/", views.flag, name="annotate_flag"),
    path("studies/<slug:slug>/progress/", views.progress, name="study_progress"),
    path("studies/<slug:slug>/progress/settings/", views.annotation_settings, name="study_annotation_settings"),
    path("studies/<slug:slug>/progress/invite/", views.new_invite_link, name="study_new_invite"),
    path("studies/<slug:slug>/progress/crowd-participants.csv", views.crowd_participants_csv,
         name="study_crowd_participants_csv"),
    path("studies/<slug:slug>/progress/crowd-participants/<int:pk>/release/", views.release_crowd_participant,
         name="study_release_crowd_participant"),
    path("studies/<slug:slug>/attention-check/<path:external_id>/", views.attention_check,
         name="item_attention_check"),
]
