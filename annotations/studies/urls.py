"""Routes of the loading area: study pages and the studies API."""
from django.urls import path
from rest_framework.routers import DefaultRouter

from . import design_views, views
from .api import DesignView, StudyViewSet

urlpatterns = [
    path("account/token/", views.api_token, name="api_token"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/design/", design_views.design, name="study_design"),
    path("studies/<slug:slug>/", views.study_detail, name="study_detail"),
    path("studies/<slug:slug>/upload/", views.study_upload, name="study_upload"),
    path("studies/<slug:slug>/uploads/<int:job_id>/", views.upload_job, name="upload_job"),
    path("studies/<slug:slug>/status/", views.study_status, name="study_status"),
    path("studies/<slug:slug>/edit/", views.study_edit, name="study_edit"),
    path("studies/<slug:slug>/researchers/", views.study_researchers, name="study_researchers"),
    path("studies/<slug:slug>/items/<path:external_id>/", views.item_detail, name="item_detail"),
]

router = DefaultRouter()
router.register("studies", StudyViewSet, basename="study")
api_urlpatterns = [path("design/", DesignView.as_view(), name="api_design"), *router.urls]
