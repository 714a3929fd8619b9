from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import DefaultRouter

from .api import StudyViewSet

router = DefaultRouter()
router.register("studies", StudyViewSet, basename="study")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api_token_obtain"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api_redoc"),
    *router.urls,
]
