from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from .api import StudyViewSet
from .api_leaderboard import LeaderboardView, RankingsExportView, RankingsView

router = DefaultRouter()
router.register("studies", StudyViewSet, basename="study")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api_token_obtain"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api_redoc"),
    path("studies/<slug:slug>/rankings/", RankingsView.as_view(), name="api_rankings"),
    re_path(r"^studies/(?P<slug>[-\w]+)/rankings/export/?$", RankingsExportView.as_view(),
            name="api_rankings_export"),
    path("studies/<slug:slug>/leaderboard/", LeaderboardView.as_view(), name="api_leaderboard"),
    *router.urls,
]
