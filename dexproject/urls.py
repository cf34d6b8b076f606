"""Top-level URL routes."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("paper-trading/api/", include("paper_trading.api.urls")),
    # The web dashboard (sign-in, dashboard, trades, configuration, analytics).
    path("paper-trading/", include("paper_trading.web.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", RedirectView.as_view(url="/paper-trading/", permanent=False)),
]
