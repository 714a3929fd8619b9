"""The app's routes: the three areas' pages, then the API under /api/."""
from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from . import views
from .annotating import urls as annotating_urls
from .results import urls as results_urls
from .studies import urls as studies_urls

# The docs pages are pages: DRF's OPTIONS answer would be rendered through their HTML template and fail.
DOCS_METHODS = ["get", "head"]

api_urlpatterns = [
    path("auth/token/", views.ObtainAuthTokenView.as_view(), name="api_token_obtain"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The docs pages run vendored bundles we do not write: their policies are the site's, plus
    # only what each needs. Scripts stay 'self' only (Swagger's init script is a separate file);
    # Swagger UI draws its icons from data: images.
    path("docs/", csp_update({"img-src": ["data:"]})(
        SpectacularSwaggerSplitView.as_view(url_name="schema", http_method_names=DOCS_METHODS)), name="api_docs"),
    # Redoc writes its styles into <style> elements at run time, draws data: images and searches
    # in a blob: worker; its maker's logo on cdn.redoc.ly stays blocked (Redoc then hides it).
    path("redoc/", csp_update({"style-src": [UNSAFE_INLINE], "img-src": ["data:"], "worker-src": [SELF, "blob:"]})(
        SpectacularRedocView.as_view(url_name="schema", http_method_names=DOCS_METHODS)), name="api_redoc"),
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
