"""The REST API under /paper-trading/api/."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [
    path("auth/", include("paper_trading.api.auth_urls")),
]
