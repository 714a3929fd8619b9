"""Site-wide pages that belong to no one area: the home page (a researcher's studies and an
annotator's work side by side) and the health check for load balancers."""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db import connection, transaction
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from annotations.annotating.selectors import annotator_studies
from annotations.studies.selectors import researcher_studies


@login_required
def home(request):
    # Annotators see the studies they rank here, and nothing of the researchers' side of them.
    return render(request, "home.html", {"studies": researcher_studies(request.user),
                                         "annotating": annotator_studies(request.user)})


@transaction.non_atomic_requests
@require_GET
def healthz(request):
    """For load balancers and docker-compose: 200 when the database (and Redis, if used) answer."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy, and says why
        checks["database"] = f"error: {exc.__class__.__name__}"
    if settings.REDIS_URL:
        try:
            cache.set("healthz", "ok", 10)
            checks["redis"] = "ok" if cache.get("healthz") == "ok" else "error: no round trip"
        except Exception as exc:  # noqa: BLE001
            checks["redis"] = f"error: {exc.__class__.__name__}"
    else:
        checks["redis"] = "not configured (tasks run in process)"
    healthy = all(not value.startswith("error") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)

