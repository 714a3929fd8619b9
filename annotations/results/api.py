"""The results API: import and export rankings (JSONL), download the leaderboard as JSON, CSV,
Markdown or LaTeX. Researchers of the study only; others get 404.
"""
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response as APIResponse
from rest_framework.views import APIView

import orjson

from annotations.models import FileJob
from annotations.studies.api import JOB_ACCEPTED, JOB_LOCATION, job_accepted
from annotations.studies.selectors import researcher_study
from annotations.studies.serializers import FileJobSerializer, UploadRejectedSerializer

from . import exports, services
from .figures import Options


class RankingFileSerializer(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, help_text="JSONL, one ranking per line: item_id, "
                                 "annotator, criterion, ranking (tie groups of system names, best first), "
                                 "optional display_order, seconds, attention_passed.")


class RankingImportSummarySerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    rankings_created = serializers.IntegerField()
    rankings_unchanged = serializers.IntegerField()
    annotators = serializers.IntegerField()


class _TextRenderer(BaseRenderer):
    """Lets content negotiation accept ?format=csv|md|tex|jsonl; the views send finished bytes."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return orjson.dumps(data)  # an error body (e.g. 404) in the negotiated format's place


def _renderer(fmt, media_type):
    return type(f"{fmt.upper()}Renderer", (_TextRenderer,), {"format": fmt, "media_type": media_type})


CSVRenderer = _renderer("csv", "text/csv")
MarkdownRenderer = _renderer("md", "text/markdown")
LaTeXRenderer = _renderer("tex", "application/x-tex")
JSONLRenderer = _renderer("jsonl", "application/x-ndjson")


class RankingsView(APIView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": RankingFileSerializer},
                   responses={201: RankingImportSummarySerializer,
                              200: OpenApiResponse(RankingImportSummarySerializer, "nothing changed"),
                              202: JOB_ACCEPTED,
                              400: UploadRejectedSerializer, 409: UploadRejectedSerializer,
                              413: UploadRejectedSerializer},
                   parameters=[JOB_LOCATION])
    def post(self, request, slug):
        """Import rankings collected elsewhere (all or nothing). 201 when something was stored,
        200 when every ranking was already stored identically; 400 lists every located problem.
        A file larger than EVALSITE_BACKGROUND_BYTES answers 202 with a job to poll."""
        study = researcher_study(request.user, slug)
        form = RankingFileSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        upload = form.validated_data["file"]
        try:
            summary = services.upload_rankings(study, upload, user=request.user)
        except services.UploadRejected as exc:
            return APIResponse(exc.as_dict(), status=exc.status)
        if isinstance(summary, FileJob):
            return job_accepted(request, summary)
        return APIResponse(summary.as_dict(),
                           status=status.HTTP_201_CREATED if summary.changed else status.HTTP_200_OK)


class RankingsExportView(APIView):
    renderer_classes = [JSONLRenderer, JSONRenderer]

    @extend_schema(responses={(200, "application/x-ndjson"): OpenApiTypes.BINARY})
    def get(self, request, slug):
        """Every ranking of the study as JSONL, in the import format, annotators pseudonymised
        (annotator-1, annotator-2, ... in order of their first ranking)."""
        return exports.rankings_response(researcher_study(request.user, slug))

    def get_renderers(self):
        if self.request is not None and self.request.method == "POST":
            return [JSONRenderer()]
        return super().get_renderers()

    @extend_schema(request=None, responses={202: OpenApiResponse(FileJobSerializer, "the export is being written")},
                   parameters=[JOB_LOCATION])
    def post(self, request, slug):
        """Prepare the same JSONL export as a file that a worker writes: 202 with a job to poll; once
        it is done its `download` names the file (kept EVALSITE_EXPORT_KEEP_HOURS hours)."""
        study = researcher_study(request.user, slug)
        return job_accepted(request, services.start_rankings_export(study, user=request.user))


class LeaderboardView(APIView):
    renderer_classes = [JSONRenderer, CSVRenderer, MarkdownRenderer, LaTeXRenderer]

    def perform_content_negotiation(self, request, force=False):
        try:
            return super().perform_content_negotiation(request, force)
        except (Http404, NotFound):
            raise ValidationError({"format": "use json, csv, md or tex"}) from None

    @extend_schema(
        parameters=[
            OpenApiParameter("format", str, enum=list(exports.FORMATS), default="json"),
            OpenApiParameter("unit", str, enum=["annotation", "item"], default="annotation",
                             description="per annotation (each ranking once) or per item (rankings combined)"),
            OpenApiParameter("exclude", str, enum=["attention", "none"], default="attention",
                             description="leave out annotators whose attention-check pass rate is below the "
                                         "study's minimum"),
        ],
        responses={(200, "application/json"): OpenApiTypes.OBJECT, (200, "text/csv"): OpenApiTypes.STR,
                   (200, "text/markdown"): OpenApiTypes.STR, (200, "application/x-tex"): OpenApiTypes.STR},
    )
    def get(self, request, slug):
        """The leaderboard, per criterion: Win@1 with 95 % intervals, Win@k, mean rank, Bradley-Terry,
        rank intervals, significance groups, pairwise win rates, agreement and position bias; how many
        rankings hold the leader up (`robustness`, `robustness_method`: greedy removal confirmed by
        recomputing); the tie model (`tie_model`: Plackett-Luce with tie parameters, Turner et al.
        2020; `tie_parameters`, `tie_share_equal`, per system `pl_ties_worth`); and `stop_signal`:
        is #1 separated from #2, by an anytime-valid confidence sequence (betting, Waudby-Smith &
        Ramdas 2024; `name`, `method`), with the `forecast` of more items, rankings and
        annotator-hours. Top level: `stop_when_answered` and `question_answered`."""
        study = researcher_study(request.user, slug)
        options = Options.from_query(request.query_params)
        file_format = request.accepted_renderer.format
        return exports.leaderboard_response(study, services.fresh(study, options), file_format,
                                            inline=file_format == "json")
