"""A database connection lost mid-request (a restart, a failover, pg_terminate_backend) answers a
clear 503 saying whether anything was saved, and the broken connection is dropped for the next request."""
import logging

from django.db import InterfaceError, OperationalError, connections
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# SQLSTATE of a lost connection: class 08 (connection exception), and the server shutting the
# session down (57P01 admin shutdown or pg_terminate_backend, 57P02 crash, 57P03 starting up).
LOST_STATES = ("57P01", "57P02", "57P03")


def connection_lost(exc):
    """True for the errors of a connection that is gone; False for every other OperationalError
    (a lock or statement timeout, a serialization failure, SQLite's "database is locked")."""
    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    cause = exc.__cause__
    state = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
    if state:
        return state.startswith("08") or state in LOST_STATES
    # No code from the server: psycopg found the socket closed, or could not connect at all.
    return type(cause).__module__.split(".")[0] in ("psycopg", "psycopg2")


def _during_commit(exc):
    # The one case where the server may have committed before the connection went.
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_name in ("commit", "_commit") and "django/db/backends" in code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False


class DatabaseConnectionLostMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not connection_lost(exception):
            return None
        logger.warning("database connection lost during %s %s", request.method, request.path,
                       exc_info=exception)
        for connection in connections.all(initialized_only=True):
            # Django drops a connection that failed inside atomic(); this one may have failed
            # outside it. conn_health_checks then opens a fresh one for the next request.
            connection.close()
        unsure = _during_commit(exception)
        if unsure:
            saved = _("The connection dropped while your request was being saved, so it may or may not "
                      "have been stored. Check whether it was, and send it again if not.")
        else:
            saved = _("Nothing from this request was saved. Please try again in a few seconds.")
        title = _("The database connection dropped")
        if request.path.startswith("/api/"):
            response = JsonResponse({"detail": f"{title}. {saved}", "saved": "unknown" if unsure else "nothing"},
                                    status=503)
        elif getattr(request, "htmx", False):
            # htmx swaps only 2xx bodies, so the message comes as 200; in the ranking panel it
            # replaces only the message area, and the annotator's placements stay on screen.
            response = render(request, "503_database.html", {"title": title, "saved": saved, "fragment": True})
            if request.htmx.target == "work":
                response["HX-Retarget"] = "#rank-message"
            response["HX-Reswap"] = "innerHTML"
        else:
            response = render(request, "503_database.html", {"title": title, "saved": saved}, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
