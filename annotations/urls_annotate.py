"""Routes of the annotators' side (joining, ranking) and of the researchers' pages that follow it."""
from django.urls import include, path

from . import views_annotate, views_progress

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("join/<str:token>/", views_annotate.join, name="join"),
    path("annotate/<slug:slug>/", views_annotate.start, name="annotate_start"),
    path("annotate/<slug:slug>/work/", views_annotate.work, name="annotate_work"),
    path("annotate/<slug:slug>/done/", views_annotate.done, name="annotate_done"),
    path("annotate/<slug:slug>/<str:public_id>/submit/", views_annotate.submit, name="annotate_submit"),
    path("annotate/<slug:slug>/<str:public_id>/skip/", views_annotate.skip, name="annotate_skip"),
    path("annotate/<slug:slug>/<str:public_id>/flag/", views_annotate.flag, name="annotate_flag"),
    path("studies/<slug:slug>/progress/", views_progress.progress, name="study_progress"),
    path("studies/<slug:slug>/progress/settings/", views_progress.annotation_settings,
         name="study_annotation_settings"),
    path("studies/<slug:slug>/progress/invite/", views_progress.new_invite_link, name="study_new_invite"),
    path("studies/<slug:slug>/attention-check/<path:external_id>/", views_progress.attention_check,
         name="item_attention_check"),
]
