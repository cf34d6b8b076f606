"""Websocket URLs (served by `dexproject.asgi`)."""

from __future__ import annotations

from typing import Any

from django.urls import re_path

from paper_trading.realtime.consumers import PaperTradingConsumer

#: Any id segment is routed, so a malformed one is refused with 4404 like an unknown one.
websocket_urlpatterns: list[Any] = [
    re_path(r"^ws/paper-trading/(?P<account_id>[^/]+)/$", PaperTradingConsumer.as_asgi()),
]
