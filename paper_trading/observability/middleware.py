"""Request latency for /metrics, labelled by view name and status class to keep cardinality low."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from paper_trading.observability.metrics import API_LATENCY


class RequestLatencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        # Unrouted paths (404s, scanners) share one label instead of one per path.
        view = (match.view_name or match.url_name or "unnamed") if match else "unmatched"
        API_LATENCY.labels(view=view, status=f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response
