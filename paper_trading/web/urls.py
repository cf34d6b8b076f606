"""The dashboard's pages under /paper-trading/ (the API lives under /paper-trading/api/)."""

from __future__ import annotations

from django.urls import path

from paper_trading.web import views

urlpatterns = [
    path("", views.dashboard, name="web-dashboard"),
    path("login/", views.login_page, name="web-login"),
    path("logout/", views.logout_page, name="web-logout"),
    path("accounts/new/", views.create_account_page, name="web-account-create"),
    path("thoughts/older/", views.older_thoughts, name="web-older-thoughts"),
    path("trades/", views.trades_page, name="web-trades"),
    path("thoughts/<uuid:thought_id>/", views.thought_page, name="web-thought"),
    path("config/", views.config_page, name="web-config"),
    path("analytics/", views.analytics_page, name="web-analytics"),
    path("analytics/series/", views.analytics_series, name="web-analytics-series"),
]
