"""The app's routes: the three areas' pages, then the API under /api/."""
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.authtoken.views import obtain_auth_token

from . import views
from .annotating import urls as annotating_urls
from .results import urls as results_urls
from .studies import urls as studies_urls

api_urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api_token_obtain"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="schema"), name="api_redoc"),
    *results_urls.api_urlpatterns,
    *studies_urls.api_urlpatterns,
]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    *studies_urls.urlpatterns,
    *annotating_urls.urlpatterns,
    *results_urls.urlpatterns,
    path("api/", include(api_urlpatterns)),
]
