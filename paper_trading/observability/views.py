"""/healthz, /readyz and /metrics: plain Django views, no auth beyond the optional metrics token.

They hold nothing private (metrics carry no ids or amounts per account), so they skip the API's
authentication and throttling; set METRICS_TOKEN to require a bearer token on /metrics.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from paper_trading.observability.health import run_checks


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No database, so a slow database never gets it restarted."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    ready, checks = run_checks()
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("metrics token required\n", status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
