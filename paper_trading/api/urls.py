"""The REST API under /paper-trading/api/."""

from __future__ import annotations

from django.urls import include, path, re_path

from paper_trading.api import views

urlpatterns = [
    path("auth/", include("paper_trading.api.auth_urls")),
    path("accounts/", views.AccountListView.as_view(), name="api-accounts"),
    path("accounts/<uuid:account_id>/", views.AccountDetailView.as_view(), name="api-account"),
    path(
        "accounts/<uuid:account_id>/reset/",
        views.AccountResetView.as_view(),
        name="api-account-reset",
    ),
    path("ai-thoughts/", views.ThoughtListView.as_view(), name="api-thoughts"),
    path("portfolio/", views.PortfolioView.as_view(), name="api-portfolio"),
    path("trades/", views.TradeListView.as_view(), name="api-trades"),
    path("trades/recent/", views.RecentTradesView.as_view(), name="api-trades-recent"),
    path("positions/open/", views.OpenPositionsView.as_view(), name="api-positions-open"),
    path("metrics/", views.MetricsView.as_view(), name="api-metrics"),
    path("performance/", views.PerformanceView.as_view(), name="api-performance"),
    path("prices/<str:token_symbol>/", views.PriceView.as_view(), name="api-price"),
    path("configuration/", views.ConfigurationView.as_view(), name="api-configuration"),
    path("bot/start/", views.BotStartView.as_view(), name="api-bot-start"),
    path("bot/stop/", views.BotStopView.as_view(), name="api-bot-stop"),
    path("bot/status/", views.BotStatusView.as_view(), name="api-bot-status"),
    path("analytics/data/", views.AnalyticsDataView.as_view(), name="api-analytics"),
    path("analytics/export/", views.AnalyticsExportView.as_view(), name="api-export"),
    # Anything else under the API is a JSON 404 in the error shape, not an HTML page; [\s\S]
    # rather than ".", which stops at a newline (an encoded %0A in the path).
    re_path(r"^[\s\S]*$", views.not_found, name="api-not-found"),
]
