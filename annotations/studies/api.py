"""The studies API (token or session auth): studies, their settings, outputs, items, systems and
responses. Only a study's researchers see it; others get 404."""
from django.db.models import Count
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response as APIResponse
from rest_framework.views import APIView

from annotations.models import FileJob, Response

from . import designer, file_jobs, services
from .selectors import researcher_studies, researcher_study
from .serializers import (
    DesignGridSerializer, DesignRequestSerializer, FileJobSerializer, ImportSummarySerializer, ItemSerializer,
    OutputUploadSerializer, ResponseSerializer,
    StudySerializer, StudyUpdateSerializer, SystemSerializer, UploadRejectedSerializer,
)

# How a POST that starts a file job answers, in the schema (outputs, rankings import and export).
JOB_LOCATION = OpenApiParameter("Location", OpenApiTypes.URI, location=OpenApiParameter.HEADER, response=[202],
                                description="The job resource: poll it for status, progress and result.")
JOB_ACCEPTED = OpenApiResponse(FileJobSerializer, "the file is larger than EVALSITE_BACKGROUND_BYTES: it was "
                               "stored and a worker loads it; poll the job resource named by Location")


def job_accepted(request, job):
    """202 Accepted for a file job: the job as its resource shows it, and Location naming it."""
    location = request.build_absolute_uri(reverse("study-job", kwargs={"slug": job.study.slug, "job_id": job.pk}))
    return APIResponse(FileJobSerializer(job, context={"request": request}).data,
                       status=status.HTTP_202_ACCEPTED, headers={"Location": location})


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
                              202: JOB_ACCEPTED,
                              400: UploadRejectedSerializer, 409: UploadRejectedSerializer,
                              413: UploadRejectedSerializer},
                   parameters=[JOB_LOCATION])
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser],
            serializer_class=OutputUploadSerializer)
    def outputs(self, request, slug=None, format=None):
        """Upload system outputs (all or nothing). 201 when something changed, 200 when not; a file
        larger than EVALSITE_BACKGROUND_BYTES answers 202 with a job to poll (the same summary, or
        the same located refusal, ends up in its `result`)."""
        study = self._study()
        form = OutputUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            summary = services.upload_outputs(
                study, upload, file_format=form.validated_data.get("format"),
                replace=form.validated_data["replace"], user=request.user,
            )
        except services.UploadRejected as exc:
            return APIResponse(exc.as_dict(), status=exc.status)
        if isinstance(summary, FileJob):
            return job_accepted(request, summary)
        return APIResponse(summary.as_dict(),
                           status=status.HTTP_201_CREATED if summary.changed else status.HTTP_200_OK)

    @extend_schema(responses={200: FileJobSerializer, 404: OpenApiResponse(description="no such job in this study")})
    @action(detail=True, methods=["get"], url_path=r"jobs/(?P<job_id>[0-9]+)", url_name="job",
            serializer_class=FileJobSerializer)
    def job(self, request, slug=None, job_id=None, format=None):
        """A file job of the study (a large upload or import, or a prepared export): its status,
        progress from 0 to 1, and once finished its result. Looking at it also hands a job whose
        task never reached the queue (Redis was down) to the queue again."""
        job = file_jobs.hand_over(file_jobs.study_job(self._study(), job_id))
        return APIResponse(FileJobSerializer(job, context={"request": request}).data)

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY,
                              404: OpenApiResponse(description="no such job, not a finished export, or expired")})
    @action(detail=True, methods=["get"], url_path=r"jobs/(?P<job_id>[0-9]+)/file", url_name="job-file")
    def job_file(self, request, slug=None, job_id=None, format=None):
        """Download a prepared export (streamed). Kept EVALSITE_EXPORT_KEEP_HOURS hours, or until a
        newer export of the study replaces it."""
        return file_jobs.file_response(file_jobs.study_job(self._study(), job_id))

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


class DesignView(APIView):
    @extend_schema(request=DesignRequestSerializer, responses={200: DesignGridSerializer})
    def post(self, request):
        """The study designer: for each (items, annotations per item) on the grid, simulated studies
        from the Plackett-Luce model of design.md, each analysed as the leaderboard does (Win@1, exact
        sign test over items, Holm-corrected), give the chance of ranking the true best first and
        separating it from #2, the expected interval width and the cost; `recommended` is the
        cheapest cell that reaches the target, `method` names how. Percentages are given in
        percent (44.3), and come back as fractions (0.443). 400 names each field that is wrong."""
        form = DesignRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            result = designer.grid(form.validated_data)
        except ValueError:
            raise ValidationError({"best_win1": [designer.UNREACHABLE]}) from None
        return APIResponse({**result, "explanation": designer.explain(result)})

