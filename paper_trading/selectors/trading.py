"""Trades and thoughts of one account, filtered the way the API and pages ask."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet

from paper_trading.models import PaperAIThoughtLog, PaperTrade, PaperTradingAccount


def trades(
    account: PaperTradingAccount,
    *,
    status: str | None = None,
    token: str | None = None,
    side: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[PaperTrade]:
    queryset = PaperTrade.objects.filter(account=account)
    if status:
        queryset = queryset.filter(status=status)
    if token:
        queryset = queryset.filter(token_symbol=token.upper())
    if side:
        queryset = queryset.filter(side=side)
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if until:
        queryset = queryset.filter(created_at__lte=until)
    return queryset.order_by("-created_at", "-trade_id")


def thoughts(
    account: PaperTradingAccount,
    *,
    since: datetime | None = None,
    decision_type: str | None = None,
    token: str | None = None,
) -> QuerySet[PaperAIThoughtLog]:
    queryset = PaperAIThoughtLog.objects.filter(account=account)
    if since:
        queryset = queryset.filter(created_at__gte=since)
    if decision_type:
        queryset = queryset.filter(decision_type=decision_type)
    if token:
        queryset = queryset.filter(token_symbol=token.upper())
    # Thoughts of one tick share a time: the id makes the order (and paging) stable.
    return queryset.order_by("-created_at", "-thought_id")
