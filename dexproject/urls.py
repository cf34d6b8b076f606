"""Top-level URL routes."""

from typing import Any

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.request import Request
from rest_framework.response import Response

from paper_trading.observability import views as observability


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI under the site's own Cross-Origin-Opener-Policy (same-origin).

    drf-spectacular relaxes it to unsafe-none for OAuth2 pop-ups; this API signs in with a
    token pasted into the page, so the docs keep the policy every other page has.
    """

    @extend_schema(exclude=True)
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        response: Response = super().get(request, *args, **kwargs)  # type: ignore[no-untyped-call]
        del response["Cross-Origin-Opener-Policy"]  # SecurityMiddleware sets the site's
        return response


urlpatterns = [
    path("healthz", observability.healthz, name="healthz"),
    path("readyz", observability.readyz, name="readyz"),
    path("metrics", observability.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("paper-trading/api/", include("paper_trading.api.urls")),
    # The web dashboard (sign-in, dashboard, trades, configuration, analytics).
    path("paper-trading/", include("paper_trading.web.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", RedirectView.as_view(url="/paper-trading/", permanent=False)),
]
