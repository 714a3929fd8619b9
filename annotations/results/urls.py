"""Routes of the results area: leaderboard pages and downloads, ranking import and export, the public
read-only leaderboard, and their API."""
from django.urls import path, re_path

from . import api, views

urlpatterns = [
    path("studies/<slug:slug>/leaderboard/", views.leaderboard_page, name="leaderboard"),
    path("studies/<slug:slug>/leaderboard/forecast/", views.leaderboard_forecast, name="leaderboard_forecast"),
    path("studies/<slug:slug>/leaderboard/download.<str:file_format>", views.leaderboard_download,
         name="leaderboard_download"),
    path("studies/<slug:slug>/leaderboard/public-link/", views.public_link, name="leaderboard_public_link"),
    path("studies/<slug:slug>/rankings/import/", views.rankings_import, name="rankings_import"),
    path("studies/<slug:slug>/rankings/export/", views.rankings_export, name="rankings_export"),
    path("studies/<slug:slug>/rankings/export/prepare/", views.rankings_export_prepare,
         name="rankings_export_prepare"),
    path("studies/<slug:slug>/rankings/jobs/<int:job_id>/", views.rankings_job, name="rankings_job"),
    path("studies/<slug:slug>/rankings/jobs/<int:job_id>/download/", views.rankings_job_download,
         name="rankings_job_download"),
    path("public/leaderboard/<str:token>/", views.public_leaderboard, name="public_leaderboard"),
]

api_urlpatterns = [
    path("studies/<slug:slug>/rankings/", api.RankingsView.as_view(), name="api_rankings"),
    re_path(r"^studies/(?P<slug>[-\w]+)/rankings/export/?$", api.RankingsExportView.as_view(),
            name="api_rankings_export"),
    path("studies/<slug:slug>/leaderboard/", api.LeaderboardView.as_view(), name="api_leaderboard"),
]
