"""Site-wide pages that belong to no one area: the home page (a researcher's studies and an
annotator's work side by side), the API's token login (throttled) and the health check for load
balancers."""
import redis
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection, transaction
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET
from redis.backoff import NoBackoff
from redis.retry import Retry
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.response import Response

from annotations.annotating.selectors import annotator_studies
from annotations.studies.selectors import researcher_studies


@login_required
def home(request):
    # Annotators see the studies they rank here, and nothing of the researchers' side of them.
    return render(request, "home.html", {"studies": researcher_studies(request.user),
                                         "annotating": annotator_studies(request.user)})


class ObtainAuthTokenView(ObtainAuthToken):
    """POST /api/auth/token/ (DRF's view), answering 429 while django-axes locks the login out.

    Axes flags the lockout on DRF's request object, which its middleware never sees, so the
    flag is read here. Refusals are returned, not raised: DRF rolls back the request's
    transaction on a raised error, and with it the failure axes has just counted.
    """

    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        if serializer.is_valid():
            token, _ = Token.objects.get_or_create(user=serializer.validated_data["user"])
            return Response({"token": token.key})
        if getattr(request, "axes_locked_out", False):
            seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
            detail = (f"Too many failed logins for this username from this address: logins are refused "
                      f"for {seconds // 60} minutes, even with the right password.")
            return Response({"detail": detail}, status=429, headers={"Retry-After": str(seconds)})
        return Response(serializer.errors, status=400)


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
        checks["redis"] = _redis_check(settings.REDIS_URL)
    else:
        checks["redis"] = "not configured (tasks run in process)"
    healthy = all(not value.startswith("error") for value in checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **checks}, status=200 if healthy else 503)



def _redis_check(url):
    # Straight to Redis with one short try: the cache ignores a Redis outage, and a load balancer
    # must hear of it quickly.
    timeout = settings.REDIS_TIMEOUT
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                  retry=Retry(NoBackoff(), 0))
    try:
        client.set("healthz", "ok", ex=10)
        return "ok" if client.get("healthz") == b"ok" else "error: no round trip"
    except redis.RedisError as exc:
        return f"error: {exc.__class__.__name__} (Redis unreachable: cache, sessions by database, tasks deferred)"
    finally:
        client.close()
