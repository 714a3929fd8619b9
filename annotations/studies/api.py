"""The studies API (token or session auth): studies, their settings, outputs, items, systems and
responses. Only a study's researchers see it; others get 404."""
from django.db.models import Count
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response as APIResponse

from annotations.models import Response

from . import services
from .selectors import researcher_studies, researcher_study
from .serializers import (
    ImportSummarySerializer, ItemSerializer, OutputUploadSerializer, ResponseSerializer,
    StudySerializer, StudyUpdateSerializer, SystemSerializer, UploadRejectedSerializer,
)


class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                   mixins.UpdateModelMixin, viewsets.GenericViewSet):
    lookup_field = "slug"
    serializer_class = StudySerializer

    def get_queryset(self):
        return researcher_studies(self.request.user).prefetch_related("criteria")

    def get_serializer_class(self):
        if self.action in ("update", "partial_update"):
            return StudyUpdateSerializer
        return StudySerializer

    def perform_create(self, serializer):
        # Annotators (invited or from a crowd platform) have accounts too; only researchers create.
        if not self.request.user.has_perm("annotations.add_study"):
            raise PermissionDenied("creating studies needs the researcher permission "
                                   "'annotations.add_study'; ask an administrator")
        data = serializer.validated_data
        criteria = data.pop("criteria", None) or [{"name": "overall"}]
        try:
            study = services.create_study(owner=self.request.user, criteria=criteria, **data)
        except services.StudyInvalid as exc:
            raise ValidationError(exc.errors) from None
        serializer.instance = self.get_queryset().get(pk=study.pk)

    def perform_update(self, serializer):
        # The same service as the settings page: checks, then writes settings and status together.
        try:
            services.update_study(serializer.instance, **serializer.validated_data)
        except services.StudyInvalid as exc:
            raise ValidationError(exc.errors) from None

    def _study(self):
        return researcher_study(self.request.user, self.kwargs["slug"])

    @extend_schema(request={"multipart/form-data": OutputUploadSerializer},
                   responses={201: ImportSummarySerializer,
                              200: OpenApiResponse(ImportSummarySerializer, "nothing changed"),
                              400: UploadRejectedSerializer, 409: UploadRejectedSerializer,
                              413: UploadRejectedSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser],
            serializer_class=OutputUploadSerializer)
    def outputs(self, request, slug=None, format=None):
        """Upload system outputs (all or nothing). 201 when something changed, 200 when not."""
        study = self._study()
        form = OutputUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            summary = services.import_outputs(
                study, upload, filename=upload.name, file_format=form.validated_data.get("format"),
                replace=form.validated_data["replace"], user=request.user,
            )
        except services.UploadRejected as exc:
            return APIResponse(exc.as_dict(), status=exc.status)
        return APIResponse(summary.as_dict(),
                           status=status.HTTP_201_CREATED if summary.changed else status.HTTP_200_OK)

    # `format`: the router also answers systems.json, items.json, ... (DRF's format suffixes).
    @extend_schema(responses=SystemSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=SystemSerializer)
    def systems(self, request, slug=None, format=None):
        queryset = self._study().systems.annotate(n_responses=Count("responses")).order_by("name")
        return self._paginated(queryset, SystemSerializer)

    @extend_schema(responses=ItemSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=ItemSerializer)
    def items(self, request, slug=None, format=None):
        queryset = self._study().items.annotate(n_responses=Count("responses")).order_by("id")
        return self._paginated(queryset, ItemSerializer)

    @extend_schema(responses=ResponseSerializer(many=True))
    @action(detail=True, methods=["get"], serializer_class=ResponseSerializer)
    def responses(self, request, slug=None, format=None):
        queryset = (Response.objects.filter(item__study=self._study())
                    .select_related("item", "system").order_by("item_id", "system__name"))
        return self._paginated(queryset, ResponseSerializer)

    def _paginated(self, queryset, serializer_class):
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(serializer_class(page, many=True).data)
