"""Generation pages under a study: the form and job list, a job's progress, its actions."""
from django.urls import path, re_path

from . import views

urlpatterns = [
    path("studies/<slug:slug>/generate/", views.generate, name="generate"),
    path("studies/<slug:slug>/generate/<int:job_id>/", views.job_detail, name="generation_job"),
    re_path(r"^studies/(?P<slug>[-a-zA-Z0-9_]+)/generate/(?P<job_id>[0-9]+)/"
            r"(?P<action>cancel|resume|retry)/$", views.job_action, name="generation_job_action"),
]
