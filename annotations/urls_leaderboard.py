"""Leaderboard pages and downloads, ranking import/export, and the public read-only leaderboard."""
from django.urls import path

from . import views_leaderboard as views

urlpatterns = [
    path("studies/<slug:slug>/leaderboard/", views.leaderboard_page, name="leaderboard"),
    path("studies/<slug:slug>/leaderboard/download.<str:file_format>", views.leaderboard_download,
         name="leaderboard_download"),
    path("studies/<slug:slug>/leaderboard/public-link/", views.public_link, name="leaderboard_public_link"),
    path("studies/<slug:slug>/rankings/import/", views.rankings_import, name="rankings_import"),
    path("studies/<slug:slug>/rankings/export/", views.rankings_export, name="rankings_export"),
    path("public/leaderboard/<str:token>/", views.public_leaderboard, name="public_leaderboard"),
]
