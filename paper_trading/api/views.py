"""Thin views over selectors and services; every one works on the caller's own account only."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings as django_settings
from django.contrib.auth.models import User
from django.http import Http404, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, renderers, serializers, status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from paper_trading.api import serializers as s
from paper_trading.api.errors import Conflict, ErrorSerializer, ServiceUnavailable
from paper_trading.engine.chains import get_chain
from paper_trading.engine.prices.feed import PriceFeedService, PriceUnavailableError, feed_problem
from paper_trading.models import PaperStrategyConfiguration, PaperTradingAccount
from paper_trading.selectors import analytics, portfolio, trading
from paper_trading.selectors.accounts import account_for
from paper_trading.services import accounts as account_services
from paper_trading.services.bot import (
    ACTIVE_STATUSES,
    BotAlreadyRunningError,
    BotSettings,
    PositionsOnAnotherChainError,
    ReplayExhaustedError,
)
from paper_trading.services.bot_control import NoBotRunningError, start_bot, stop_bot
from paper_trading.services.prices import choose_price_source, live_source

ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Invalid input; `fields` names each."),
    401: OpenApiResponse(ErrorSerializer, description="Not signed in."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed (e.g. missing CSRF token)."),
    404: OpenApiResponse(ErrorSerializer, description="No such object among yours."),
}
#: For the write-throttled operations (the "write" rate, per user).
THROTTLED = {
    429: OpenApiResponse(ErrorSerializer, description="Too many writes; retry later."),
}
ACCOUNT_PARAM = OpenApiParameter(
    "account", OpenApiTypes.UUID, description="Your account id; defaults to your first account."
)


def _user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _query(serializer_class: type[serializers.Serializer[Any]], request: Request) -> dict[str, Any]:
    serializer = serializer_class(data=request.query_params)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _account(request: Request, account_id: Any = None) -> PaperTradingAccount:
    return account_for(_user(request), str(account_id) if account_id else None)


class AccountListView(APIView):
    throttle_scope = "write"

    def get_throttles(self) -> list[Any]:
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        responses={200: s.AccountSerializer(many=True), **ERRORS}, summary="Your accounts"
    )
    def get(self, request: Request) -> Response:
        accounts = PaperTradingAccount.objects.filter(user=_user(request)).order_by("created_at")
        return Response(s.AccountSerializer(accounts, many=True).data)

    @extend_schema(
        request=s.AccountCreateSerializer,
        responses={201: s.AccountSerializer, 409: ErrorSerializer, **ERRORS, **THROTTLED},
        summary="Create an account",
    )
    def post(self, request: Request) -> Response:
        body = s.AccountCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        name = body.validated_data["name"]
        if PaperTradingAccount.objects.filter(user=_user(request), name=name).exists():
            raise Conflict(f"you already have an account named {name!r}")
        account = account_services.create_account(
            _user(request), name, body.validated_data["initial_balance_usd"]
        )
        return Response(s.AccountSerializer(account).data, status=status.HTTP_201_CREATED)


class AccountDetailView(APIView):
    @extend_schema(responses={200: s.AccountSerializer, **ERRORS}, summary="One account")
    def get(self, request: Request, account_id: str) -> Response:
        return Response(s.AccountSerializer(_account(request, account_id)).data)


class AccountResetView(APIView):
    throttle_scope = "write"

    @extend_schema(
        request=None,
        responses={200: s.AccountSerializer, 409: ErrorSerializer, **ERRORS, **THROTTLED},
        summary="Reset an account to its initial balance",
        description="Deletes its trades, positions, thoughts, metrics and sessions.",
    )
    def post(self, request: Request, account_id: str) -> Response:
        account = _account(request, account_id)
        if account.sessions.filter(status__in=ACTIVE_STATUSES).exists():
            raise Conflict("stop the running bot before resetting the account")
        return Response(s.AccountSerializer(account_services.reset_account(account)).data)


class ThoughtListView(APIView):
    @extend_schema(
        parameters=[s.ThoughtQuerySerializer],
        responses={200: s.ThoughtSerializer(many=True), **ERRORS},
        summary="The bot's thoughts, newest first",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.ThoughtQuerySerializer, request)
        rows = trading.thoughts(
            _account(request, q.get("account")),
            since=q.get("since"),
            decision_type=q.get("decision_type"),
            token=q.get("token"),
        )[: q["limit"]]
        return Response(s.ThoughtSerializer(rows, many=True).data)


class TradePagination(CursorPagination):
    ordering = ("-created_at", "-trade_id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


class TradeListView(APIView):
    @extend_schema(
        parameters=[
            s.TradeQuerySerializer,
            OpenApiParameter("cursor", str, description="From the previous page's links."),
            OpenApiParameter("page_size", int, description="1-500, default 50."),
        ],
        responses={200: s.TradePageSerializer, **ERRORS},
        summary="Trades, newest first, with every cost column (cursor pages)",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.TradeQuerySerializer, request)
        account = _account(request, q.pop("account", None))
        paginator = TradePagination()
        try:
            page = paginator.paginate_queryset(trading.trades(account, **q), request, self)
        except exceptions.NotFound:  # DRF's answer to a tampered cursor
            raise serializers.ValidationError({"cursor": ["invalid cursor"]}) from None
        assert page is not None
        return paginator.get_paginated_response(s.TradeSerializer(page, many=True).data)


class RecentTradesView(APIView):
    @extend_schema(
        parameters=[s.RecentQuerySerializer],
        responses={200: s.TradeSerializer(many=True), **ERRORS},
        summary="The latest trades",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.RecentQuerySerializer, request)
        rows = trading.trades(_account(request, q.get("account")))[: q["limit"]]
        return Response(s.TradeSerializer(rows, many=True).data)


class OpenPositionsView(APIView):
    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.PositionSerializer(many=True), **ERRORS},
        summary="Open positions with current prices and unrealized P&L",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        book = portfolio.portfolio(_account(request, q.get("account")))
        return Response(s.PositionSerializer(book.positions, many=True).data)


class PortfolioView(APIView):
    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.PortfolioSerializer, **ERRORS},
        summary="Balance, positions and totals",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        return Response(s.portfolio_data(_account(request, q.get("account"))))


class MetricsView(APIView):
    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.MetricsSerializer, **ERRORS},
        summary="Key figures: value, P&L, win rate, the last 24 hours",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        account = _account(request, q.get("account"))
        book = portfolio.portfolio(account)
        latest = portfolio.latest_metrics(account)
        pnl = book.total_value_usd - account.initial_balance_usd
        return Response(
            s.MetricsSerializer(
                {
                    "account": account.account_id,
                    "portfolio_value_usd": book.total_value_usd,
                    "cash_usd": account.current_balance_usd,
                    "total_pnl_usd": pnl,
                    "return_percent": pnl / account.initial_balance_usd * 100,
                    "realized_pnl_usd": account.realized_pnl_usd,
                    "unrealized_pnl_usd": book.unrealized_pnl_usd,
                    "open_positions": len(book.positions),
                    "total_trades": account.trades.count(),
                    "win_rate_percent": latest.win_rate if latest else None,
                    "last_24h": portfolio.last_24h(account),
                }
            ).data
        )


class PerformanceView(APIView):
    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.PerformanceSerializer, **ERRORS},
        summary="Sharpe, Sortino, drawdown, profit factor, best/worst trade, costs",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        account = _account(request, q.get("account"))
        m = portfolio.latest_metrics(account)
        return Response(
            s.PerformanceSerializer(
                {
                    "account": account.account_id,
                    "computed_at": m.computed_at if m else None,
                    "sharpe_ratio": m.sharpe_ratio if m else None,
                    "sortino_ratio": m.sortino_ratio if m else None,
                    "max_drawdown_percent": m.max_drawdown_percent if m else None,
                    "profit_factor": m.profit_factor if m else None,
                    "win_rate_percent": m.win_rate if m else None,
                    "closed_trades": m.closed_trades if m else 0,
                    "winning_trades": m.winning_trades if m else 0,
                    "losing_trades": m.losing_trades if m else 0,
                    "best_trade_usd": m.best_trade_usd if m else None,
                    "worst_trade_usd": m.worst_trade_usd if m else None,
                    "total_fees_usd": account.total_fees_usd,
                    "total_gas_usd": account.total_gas_usd,
                    "total_trades": account.trades.count(),
                    "reverted_trades": account.trades.filter(status="REVERTED").count(),
                }
            ).data
        )


class PriceView(APIView):
    @extend_schema(
        parameters=[s.PriceQuerySerializer],
        responses={
            200: s.PriceSerializer,
            503: OpenApiResponse(ErrorSerializer, description="No fresh price; says why."),
            **ERRORS,
        },
        summary="A token's real price from CoinGecko, with its age (never made up)",
    )
    def get(self, request: Request, token_symbol: str) -> Response:
        q = _query(s.PriceQuerySerializer, request)
        chain = get_chain(q["chain"])
        token = next((t for t in chain.tradable_tokens if t.symbol == token_symbol.upper()), None)
        if token is None:
            known = ", ".join(t.symbol for t in chain.tradable_tokens)
            raise Http404(f"unknown token {token_symbol!r} on {chain.name}; known: {known}")
        max_age = timedelta(seconds=django_settings.PRICE_MAX_AGE_SECONDS)
        feed = PriceFeedService(live_source(), max_age=max_age)
        now = datetime.now(UTC)
        try:
            snapshot = feed.get_prices([token.price_symbol], now)
        except PriceUnavailableError as exc:
            raise ServiceUnavailable(feed_problem(exc)) from None
        quote = snapshot.prices.get(token.price_symbol)
        if quote is None:
            reason = snapshot.unavailable.get(token.price_symbol, "no price")
            raise ServiceUnavailable(f"no price for {token.symbol}: {reason}")
        # Measured once the answer is in: CoinGecko stamps whole seconds, often the second after
        # the request began, and a clock a little ahead (the feed tolerates it) is age 0.
        age = max(0.0, (datetime.now(UTC) - quote.timestamp).total_seconds())
        return Response(
            s.PriceSerializer(
                {
                    "token_symbol": token.symbol,
                    "chain_id": chain.chain_id,
                    "price_usd": quote.price_usd,
                    "price_source": quote.source,
                    "observed_at": quote.timestamp,
                    "age_seconds": age,
                    "change_24h_percent": quote.change_24h_percent,
                }
            ).data
        )


def _configuration(account: PaperTradingAccount) -> PaperStrategyConfiguration:
    row, _ = PaperStrategyConfiguration.objects.get_or_create(account=account)
    return row


class ConfigurationView(APIView):
    throttle_scope = "write"

    def get_throttles(self) -> list[Any]:
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.ConfigurationSerializer, **ERRORS},
        summary="The strategy configuration",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        return Response(
            s.ConfigurationSerializer(_configuration(_account(request, q.get("account")))).data
        )

    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        request=s.ConfigurationSerializer,
        responses={200: s.ConfigurationSerializer, **ERRORS, **THROTTLED},
        summary="Change the strategy configuration (only the fields sent)",
        description="A running bot uses the new values from its next tick.",
    )
    def post(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        row = _configuration(_account(request, q.get("account")))
        body = s.ConfigurationSerializer(row, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        body.save()
        return Response(body.data)


class BotStartView(APIView):
    throttle_scope = "write"

    @extend_schema(
        request=s.BotStartSerializer,
        responses={
            201: s.SessionSerializer,
            409: OpenApiResponse(ErrorSerializer, description="A bot already runs on it."),
            **ERRORS,
            **THROTTLED,
        },
        summary="Start a bot on an account",
    )
    def post(self, request: Request) -> Response:
        body = s.BotStartSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        account = _account(request, data.get("account"))
        if data.get("strategy_config"):
            config = s.ConfigurationSerializer(
                _configuration(account), data=request.data["strategy_config"], partial=True
            )
            config.is_valid(raise_exception=True)
            config.save()
        choice = choose_price_source(data["prices"])
        settings = BotSettings(
            intel_level=data["intel_level"],
            strategy=data["strategy"],
            strategy_params=data["strategy_params"],
            chain_id=data["chain"],
            prices=choice.source,
            price_note=choice.note,
            speed=data["speed"],
            session_name="started from the API",
        )
        try:
            session = start_bot(account, settings, data.get("runtime_minutes"))
        except (BotAlreadyRunningError, PositionsOnAnotherChainError, ReplayExhaustedError) as exc:
            raise Conflict(str(exc)) from None
        return Response(s.SessionSerializer(session).data, status=status.HTTP_201_CREATED)


class BotStopView(APIView):
    throttle_scope = "write"

    @extend_schema(
        request=s.BotStopSerializer,
        responses={
            200: s.SessionSerializer,
            409: OpenApiResponse(ErrorSerializer, description="No bot is running."),
            **ERRORS,
            **THROTTLED,
        },
        summary="Stop the account's bot after its current tick",
    )
    def post(self, request: Request) -> Response:
        body = s.BotStopSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = _account(request, body.validated_data.get("account"))
        try:
            session = stop_bot(account, body.validated_data["reason"])
        except NoBotRunningError as exc:
            raise Conflict(str(exc)) from None
        return Response(s.SessionSerializer(session).data)


class BotStatusView(APIView):
    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.BotStatusSerializer, **ERRORS},
        summary="Active and recent sessions: price source, breakers, last tick",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        account = _account(request, q.get("account"))
        sessions = list(account.sessions.order_by("-started_at")[:10])
        active = next((x for x in sessions if x.status in ACTIVE_STATUSES), None)
        return Response(
            s.BotStatusSerializer(
                {
                    "account": account.account_id,
                    "running": active is not None,
                    "active": active,
                    "recent": sessions,
                }
            ).data
        )


class AnalyticsDataView(APIView):
    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={200: s.AnalyticsSerializer, **ERRORS},
        summary="Equity curve, drawdown, P&L per token and costs per gas strategy",
    )
    def get(self, request: Request) -> Response:
        q = _query(s.AccountQuerySerializer, request)
        account = _account(request, q.get("account"))
        return Response(
            s.AnalyticsSerializer(
                {
                    "account": account.account_id,
                    "equity": analytics.equity_curve(account),
                    "per_token": analytics.per_token(account),
                    "per_gas_strategy": analytics.per_gas_strategy(account),
                }
            ).data
        )


class CSVRenderer(renderers.BaseRenderer):
    """Lets clients ask for text/csv; errors still come out as the JSON error shape."""

    media_type = "text/csv"
    format = "csv"

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        return json.dumps(data).encode() if isinstance(data, dict) else bytes(data or b"")


class _Echo:
    def write(self, value: str) -> str:
        return value


class AnalyticsExportView(APIView):
    renderer_classes = (renderers.JSONRenderer, CSVRenderer)

    @extend_schema(
        parameters=[s.AccountQuerySerializer],
        responses={
            (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row a trade."),
            **ERRORS,
        },
        summary="CSV of every trade with every cost column",
    )
    def get(self, request: Request) -> StreamingHttpResponse:
        q = _query(s.AccountQuerySerializer, request)
        account = _account(request, q.get("account"))
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            for row in analytics.export_rows(account):
                yield writer.writerow(row)

        response = StreamingHttpResponse(lines(), content_type="text/csv")
        stamp = datetime.now(UTC).strftime("%Y%m%d")
        response["Content-Disposition"] = (
            f'attachment; filename="trades-{account.name}-{stamp}.csv"'.replace(" ", "_")
        )
        return response


@extend_schema(exclude=True)
@api_view(["GET", "POST", "PUT", "PATCH", "DELETE"])
@permission_classes([AllowAny])
def not_found(request: Request) -> Response:
    raise exceptions.NotFound(f"no API endpoint at {request.path}")
