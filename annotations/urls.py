from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("account/token/", views.api_token, name="api_token"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/<slug:slug>/", views.study_detail, name="study_detail"),
    path("studies/<slug:slug>/upload/", views.study_upload, name="study_upload"),
    path("studies/<slug:slug>/status/", views.study_status, name="study_status"),
    path("studies/<slug:slug>/edit/", views.study_edit, name="study_edit"),
    path("studies/<slug:slug>/researchers/", views.study_researchers, name="study_researchers"),
    path("studies/<slug:slug>/items/<path:external_id>/", views.item_detail, name="item_detail"),
    path("", include("annotations.urls_annotate")),
    path("", include("annotations.urls_leaderboard")),
    path("api/", include("annotations.api_urls")),
]
