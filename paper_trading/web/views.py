"""The dashboard's pages: each shows one of the signed-in user's own accounts (another's is 404).

Pages are rendered on the server from the same selectors and serializers as the API, and carry
their data as JSON (``json_script``) for the small scripts that draw charts and apply live
updates. Changes (start/stop, configuration) go through the REST API from the page's script;
the forms also work without it where that is cheap (sign-in, configuration, new account).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from rest_framework import serializers

from paper_trading.api import serializers as s
from paper_trading.engine.chains import CHAINS
from paper_trading.models import (
    PaperAIThoughtLog,
    PaperStrategyConfiguration,
    PaperTrade,
    PaperTradingAccount,
    PriceHistory,
)
from paper_trading.realtime.messages import plain, snapshot_message
from paper_trading.selectors import analytics, portfolio, trading
from paper_trading.selectors.accounts import account_for, user_accounts
from paper_trading.services.accounts import create_account
from paper_trading.web import display as d

LOGIN_URL = reverse_lazy("web-login")
#: Points of the dashboard's equity sparkline, and of each analytics price chart.
DASHBOARD_EQUITY_POINTS = 500
MAX_PRICE_POINTS = 2000
TRADE_PAGE_SIZES = (25, 50, 100)
#: Thoughts per "Show older" on the dashboard (at most; a page never splits a timestamp).
OLDER_THOUGHTS = 20
SPEEDS = [
    ("60", "60x (a minute per second)"),
    ("3600", "3,600x (an hour per second)"),
    ("36000", "36,000x (10 hours per second)"),
    ("max", "As fast as possible"),
]

signed_in = login_required(login_url=LOGIN_URL)


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _accounts(request: HttpRequest) -> tuple[list[PaperTradingAccount], PaperTradingAccount | None]:
    """The user's accounts and the one the page is about (``?account=``; else the first).

    Someone else's account id is a 404, exactly like an unknown one.
    """
    user = _user(request)
    accounts = user_accounts(user)
    wanted = request.GET.get("account") or None
    if wanted:
        return accounts, account_for(user, wanted)
    if not accounts:
        return accounts, None
    active = [a for a in accounts if a.is_active]
    return accounts, (active or accounts)[0]


def _page(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    accounts, account = context["accounts"], context["account"]
    context.setdefault(
        "account_choices", [{"id": str(a.account_id), "name": a.name} for a in accounts]
    )
    context["account_id"] = str(account.account_id) if account else ""
    return render(request, template, context)


def _no_account(request: HttpRequest, accounts: list[PaperTradingAccount]) -> HttpResponse:
    return _page(
        request,
        "paper_trading/no_account.html",
        {"accounts": accounts, "account": None, "nav": "", "errors": {}},
    )


# -- signing in --------------------------------------------------------------------------------


def _next_url(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    # A path only: redirect() would take a bare word for a view name (NoReverseMatch, a 500).
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return str(reverse("web-dashboard"))


@ensure_csrf_cookie
@require_http_methods(["GET", "POST"])
def login_page(request: HttpRequest) -> HttpResponse:
    """Username/password (the demo user) or Sign-In with Ethereum (the page's script)."""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_next_url(request))
    error = ""
    username = ""
    if request.method == "POST":  # the form without script: a plain Django login
        username = request.POST.get("username", "").strip()
        user = authenticate(request, username=username, password=request.POST.get("password", ""))
        if isinstance(user, User):
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect(_next_url(request))
        error = "Invalid username or password."
    return render(
        request,
        "paper_trading/login.html",
        {"next": _next_url(request), "error": error, "username": username},
        status=400 if error else 200,
    )


@require_POST
def logout_page(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("web-login")


@signed_in
@require_http_methods(["GET", "POST"])
def create_account_page(request: HttpRequest) -> HttpResponse:
    accounts = user_accounts(_user(request))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        body = s.AccountCreateSerializer(
            data={
                "name": request.POST.get("name", "").strip(),
                "initial_balance_usd": request.POST.get("initial_balance_usd") or "10000",
            }
        )
        if body.is_valid():
            name = body.validated_data["name"]
            if any(a.name == name for a in accounts):
                errors = {"name": [f"you already have an account named {name!r}"]}
            else:
                account = create_account(
                    _user(request), name, body.validated_data["initial_balance_usd"]
                )
                return redirect(f"{reverse('web-dashboard')}?account={account.account_id}")
        else:
            errors = {k: [str(m) for m in v] for k, v in body.errors.items()}
    return _page(
        request,
        "paper_trading/no_account.html",
        {"accounts": accounts, "account": None, "nav": "", "errors": errors},
    )


# -- dashboard ---------------------------------------------------------------------------------


def _position_row(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": p["position_id"],
        "token": p["token_symbol"],
        "quantity": d.quantity(p["quantity"]),
        "entry": d.price(p["average_entry_price_usd"]),
        "price": d.price(p["current_price_usd"]),
        "value": d.usd(p["current_value_usd"]),
        "pnl": d.signed_usd(p["unrealized_pnl_usd"]),
        "pnl_tone": d.tone(p["unrealized_pnl_usd"]),
    }


def _trade_row(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": t["trade_id"],
        "when": d.when(t["created_at"]),
        "token": t["token_symbol"],
        "side": t["side"],
        "status": t["status"],
        "amount_usd": d.usd(t["amount_in_usd"] if t["side"] == "BUY" else t["amount_out_usd"]),
        "price": d.price(t["execution_price_usd"]),
        "fee": d.cost(t["swap_fee_usd"]),
        "impact": d.ratio(t["price_impact_bps"], 1),
        "gas": d.cost(t["gas_cost_usd"]),
        "pnl": d.signed_usd(t["net_pnl_usd"]) if t["side"] == "SELL" else "",
        "pnl_tone": d.tone(t["net_pnl_usd"]) if t["side"] == "SELL" else "",
        "decision": t.get("decision") or "",
        "revert_reason": t.get("revert_reason") or "",
        "badges": _tx_badges(t),
    }


def _tx_badges(t: dict[str, Any]) -> list[dict[str, str]]:
    """What happened to the swap's transaction, beyond a plain fill: one badge per fact.

    dashboard.js `txBadges` draws the same badges for trades that arrive over the socket.
    """
    badges: list[dict[str, str]] = []
    if t["status"] != "EXECUTED":
        badges.append({"label": t["status"].lower(), "tone": "warn", "title": t["revert_reason"]})
    if t.get("sandwiched"):
        title = f"front-run and back-run in the mempool: {d.cost(t['mev_cost_usd'])} lost"
        badges.append({"label": "sandwiched", "tone": "bad", "title": title})
    states = [e["state"] for e in t.get("transactions") or ()]
    if "pending" in states:
        blocks = t["inclusion_delay_blocks"]
        title = f"waited {blocks} blocks with the {t['gas_strategy']} gas strategy"
        badges.append({"label": f"pending {blocks} blk", "tone": "info", "title": title})
    if t.get("tx_attempts", 1) > 1:
        label = f"replaced {t['tx_attempts'] - 1}x"
        title = "re-sent with a higher fee while stuck"
        badges.append({"label": label, "tone": "info", "title": title})
    return badges


def _thought_row(t: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": t["thought_id"],
        "when": d.when(t["created_at"]),
        "token": t["token_symbol"],
        "decision": t["decision_type"],
        "confidence": d.ratio(t["confidence_level"], 0),
        "risk": d.ratio(t["risk_assessment"], 0),
        "reasoning": t["reasoning"],
    }


def _bot_view(status: dict[str, Any]) -> dict[str, Any]:
    active = status.get("active")
    recent = status.get("recent") or []
    session = active or (recent[0] if recent else None)
    if active and active["status"] == "PAUSED":
        state = "paused"
    elif active:
        state = "running"
    else:
        state = "stopped"
    return {
        "state": state,
        "session": session,
        "source": (session or {}).get("price_source", ""),
        "last_tick": d.when((session or {}).get("last_tick_at")),
        "breakers": (session or {}).get("tripped_breakers") or [],
    }


def _figures(account: PaperTradingAccount, folio: dict[str, Any]) -> dict[str, Any]:
    latest = portfolio.latest_metrics(account)
    win_rate = latest.win_rate if latest else None
    return {
        "total_value": d.usd(folio["total_value_usd"]),
        "cash": d.usd(folio["cash_usd"]),
        "realized": d.signed_usd(folio["realized_pnl_usd"]),
        "realized_tone": d.tone(folio["realized_pnl_usd"]),
        "unrealized": d.signed_usd(folio["unrealized_pnl_usd"]),
        "unrealized_tone": d.tone(folio["unrealized_pnl_usd"]),
        "total_pnl": d.signed_usd(folio["total_pnl_usd"]),
        "total_pnl_tone": d.tone(folio["total_pnl_usd"]),
        "win_rate": d.percent(win_rate),
        "win_rate_raw": None if win_rate is None else str(win_rate),
    }


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _line(points: list[tuple[datetime, Decimal]]) -> list[dict[str, Any]]:
    """Chart points with strictly increasing whole-second times (the last value of a second)."""
    by_second: dict[int, float] = {}
    for at, value in points:
        by_second[_epoch(at)] = float(value)
    return [{"time": t, "value": v} for t, v in sorted(by_second.items())]


@signed_in
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    accounts, account = _accounts(request)
    if account is None:
        return _no_account(request, accounts)
    snap = snapshot_message(account)["data"]
    for thought in snap["thoughts"]:
        thought.pop("market_data", None)  # the page shows none of it: keep the page small
    folio = snap["portfolio"]
    equity = analytics.equity_curve(account)[-DASHBOARD_EQUITY_POINTS:]
    initial = {
        "account": str(account.account_id),
        "ws_path": f"/ws/paper-trading/{account.account_id}/",
        "older_thoughts_url": reverse("web-older-thoughts"),
        "snapshot": snap,
        "equity": _line([(p.at, p.value_usd) for p in equity]),
        "win_rate": _figures(account, folio)["win_rate_raw"],
    }
    return _page(
        request,
        "paper_trading/dashboard.html",
        {
            "nav": "dashboard",
            "accounts": accounts,
            "account": account,
            "figures": _figures(account, folio),
            "positions": [_position_row(p) for p in folio["positions"]],
            "trades": [_trade_row(t) for t in snap["trades"]],
            "thoughts": [_thought_row(t) for t in snap["thoughts"]],
            "bot": _bot_view(snap["bot_status"]),
            "chains": sorted(
                ({"slug": c.slug, "name": c.name} for c in CHAINS.values()),
                key=lambda c: c["slug"] != "base",
            ),
            "speeds": SPEEDS,
            "initial": initial,
        },
    )


@signed_in
@require_GET
def older_thoughts(request: HttpRequest) -> JsonResponse:
    """Thoughts before ``?before=`` (ISO time) of ``?account=``, newest first, as the API's.

    The API's ``since`` is a lower bound; this is the upper bound the dashboard's "Show older"
    pages with. Several thoughts share a time (one tick), so the thoughts *at* ``before`` come
    back too (the page drops those it shows), and a page never ends inside a group of equal
    times: paging by the oldest time shown then neither skips nor stalls.
    """
    _, account = _accounts(request)
    if account is None:
        raise Http404("you have no paper trading account yet")
    try:
        before = parse_datetime(request.GET.get("before", ""))
    except ValueError:
        before = None
    if before is None:
        return JsonResponse(
            {
                "error": {
                    "code": "invalid",
                    "message": "before must be an ISO 8601 time",
                    "fields": {},
                }
            },
            status=400,
        )
    if before.tzinfo is None:
        before = before.replace(tzinfo=UTC)
    try:
        limit = min(max(int(request.GET.get("limit", OLDER_THOUGHTS)), 1), 100)
    except ValueError:
        limit = OLDER_THOUGHTS
    rows = PaperAIThoughtLog.objects.filter(account=account).order_by("-created_at", "-thought_id")
    found = list(rows.filter(created_at=before))
    older = list(rows.filter(created_at__lt=before)[:limit])
    if older:
        last = older[-1].created_at
        seen = {t.pk for t in older}
        older += [t for t in rows.filter(created_at=last) if t.pk not in seen]
    has_more = bool(older) and rows.filter(created_at__lt=older[-1].created_at).exists()
    thoughts = s.ThoughtSerializer([*found, *older], many=True).data
    for thought in thoughts:
        thought.pop("market_data", None)
    return JsonResponse({"thoughts": thoughts, "has_more": has_more})


# -- trades ------------------------------------------------------------------------------------


@signed_in
@require_GET
def trades_page(request: HttpRequest) -> HttpResponse:
    accounts, account = _accounts(request)
    if account is None:
        return _no_account(request, accounts)
    query = s.TradeQuerySerializer(
        data={k: v for k, v in request.GET.items() if v and k not in ("page", "page_size")}
    )
    errors: dict[str, list[str]] = {}
    filters: dict[str, Any] = {}
    if query.is_valid():
        filters = {k: v for k, v in query.validated_data.items() if k != "account"}
    else:
        errors = {k: [str(m) for m in v] for k, v in query.errors.items()}
    try:
        page_size = int(request.GET.get("page_size", "50"))
    except ValueError:
        page_size = 50
    if page_size not in TRADE_PAGE_SIZES:
        page_size = 50
    rows = trading.trades(account, **filters)
    paginator = Paginator(rows, page_size)
    page = paginator.get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "nav": "trades",
        "accounts": accounts,
        "account": account,
        "ws_path": f"/ws/paper-trading/{account.account_id}/",
        "page": page,
        "trades": [_full_trade_row(t) for t in s.TradeSerializer(list(page), many=True).data],
        "total": paginator.count,
        "query": params.urlencode(),
        "filters": {
            k: request.GET.get(k, "") for k in ("status", "side", "token", "since", "until")
        },
        "page_size": page_size,
        "page_sizes": TRADE_PAGE_SIZES,
        "tokens": sorted(
            set(account.trades.values_list("token_symbol", flat=True).distinct())
            | {str(filters.get("token", "")).upper()} - {""}
        ),
        "errors": errors,
    }
    if request.headers.get("HX-Request") == "true":
        return _page(request, "paper_trading/_trades_table.html", context)
    return _page(request, "paper_trading/trades.html", context)


def _full_trade_row(t: dict[str, Any]) -> dict[str, Any]:
    row = _trade_row(t)
    row.update(
        {
            "amount_in": f"{d.quantity(t['amount_in'])} {t['token_in']}",
            "amount_out": f"{d.quantity(t['amount_out'])} {t['token_out']}",
            "mid": d.price(t["mid_price_usd"]),
            "fee_bps": d.ratio(t["swap_fee_bps"], 1),
            "slippage": d.ratio(t["slippage_bps"], 1),
            "gas_units": f"{t['gas_units']:,}",
            "gas_gwei": d.quantity(t["gas_price_gwei"]),
            "pool": f"{t['pool_kind']} {int(t['fee_pips']) / 10000:g}%",
            "reason": t["reason"],
            "chain": CHAINS[t["chain_id"]].name if t["chain_id"] in CHAINS else t["chain_id"],
        }
    )
    return row


@signed_in
@require_GET
def thought_page(request: HttpRequest, thought_id: Any) -> HttpResponse:
    thought = (
        PaperAIThoughtLog.objects.select_related("account")
        .filter(pk=thought_id, account__user=_user(request))
        .first()
    )
    if thought is None:
        raise Http404("no such decision")
    data = s.ThoughtSerializer(thought).data
    trades = s.TradeSerializer(thought.trades.order_by("created_at"), many=True).data
    accounts = user_accounts(_user(request))
    return _page(
        request,
        "paper_trading/thought.html",
        {
            "nav": "trades",
            "accounts": accounts,
            "account": thought.account,
            "thought": _thought_row(data),
            "opportunity": d.ratio(data["opportunity_score"], 0),
            "strategy": data["strategy_name"],
            "market_data": sorted(plain(data["market_data"]).items()),
            "trades": [_full_trade_row(t) for t in trades],
        },
    )


# -- configuration -----------------------------------------------------------------------------


def _configuration(account: PaperTradingAccount) -> PaperStrategyConfiguration:
    row, _ = PaperStrategyConfiguration.objects.get_or_create(account=account)
    return row


def _config_fields(values: dict[str, Any], errors: dict[str, list[str]]) -> list[dict[str, Any]]:
    """Each editable field of the configuration, with what an <input> needs to check it."""
    model_fields = {f.name: f for f in PaperStrategyConfiguration._meta.get_fields()}
    fields = []
    for name, field in s.ConfigurationSerializer().fields.items():
        if field.read_only:
            continue
        model_field = model_fields.get(name)
        label = str(getattr(model_field, "verbose_name", name)).capitalize()
        label = label.replace(" usd", " (USD)").replace(" percent", " (%)")
        help_text = str(getattr(model_field, "help_text", "") or "")
        spec: dict[str, Any] = {
            "name": name,
            "label": label,
            "help": help_text,
            "value": values.get(name),
            "errors": errors.get(name, []),
        }
        if isinstance(field, serializers.BooleanField):
            spec["kind"] = "checkbox"
        elif isinstance(field, serializers.ListField):
            spec["kind"] = "tokens"
            spec["choices"] = s.ALL_TOKENS
            spec["value"] = list(values.get(name) or [])
        elif isinstance(field, serializers.DecimalField | serializers.IntegerField):
            spec["kind"] = "number"
            spec["min"] = getattr(field, "min_value", None)
            spec["max"] = getattr(field, "max_value", None)
            places = getattr(field, "decimal_places", 0) or 0
            spec["step"] = "1" if isinstance(field, serializers.IntegerField) else "any"
            spec["places"] = places
        else:
            spec["kind"] = "text"
        fields.append(spec)
    return fields


def _form_data(request: HttpRequest) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, field in s.ConfigurationSerializer().fields.items():
        if field.read_only:
            continue
        if isinstance(field, serializers.BooleanField):
            data[name] = name in request.POST
        elif isinstance(field, serializers.ListField):
            data[name] = request.POST.getlist(name)
        elif name in request.POST:
            data[name] = request.POST[name]
    return data


@signed_in
@require_http_methods(["GET", "POST"])
def config_page(request: HttpRequest) -> HttpResponse:
    accounts, account = _accounts(request)
    if account is None:
        return _no_account(request, accounts)
    row = _configuration(account)
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = dict(s.ConfigurationSerializer(row).data)
    saved = request.GET.get("saved") == "1"
    status = 200
    if request.method == "POST":  # without script; the script POSTs to the API instead
        data = _form_data(request)
        body = s.ConfigurationSerializer(row, data=data, partial=True)
        if body.is_valid():
            body.save()
            return redirect(f"{reverse('web-config')}?account={account.account_id}&saved=1")
        errors = {k: [str(m) for m in v] for k, v in body.errors.items()}
        values.update(data)
        status = 400
    response = _page(
        request,
        "paper_trading/config.html",
        {
            "nav": "config",
            "accounts": accounts,
            "account": account,
            "fields": _config_fields(values, errors),
            "saved": saved,
            "updated_at": d.when(values.get("updated_at")),
            "has_errors": bool(errors),
        },
    )
    response.status_code = status
    return response


# -- analytics ---------------------------------------------------------------------------------


def chart_series(account: PaperTradingAccount) -> dict[str, Any]:
    """Equity, drawdown, and per traded token its prices with the trades as buy/sell marks."""
    equity = analytics.equity_curve(account)
    trades = list(
        PaperTrade.objects.filter(account=account)
        .order_by("created_at", "trade_id")
        .values_list(
            "token_symbol", "chain_id", "side", "status", "execution_price_usd", "created_at"
        )
    )
    by_token: dict[str, list[tuple[int, str, str, Decimal, datetime]]] = defaultdict(list)
    for symbol, chain_id, side, status, exec_price, at in trades:
        by_token[symbol].append((chain_id, side, status, exec_price, at))
    tokens: dict[str, Any] = {}
    for symbol, rows in sorted(by_token.items()):
        first, last = rows[0][4], rows[-1][4]
        pad = max((last - first) / 10, timedelta(hours=6))
        history = list(
            PriceHistory.objects.filter(
                token_symbol=symbol,
                chain_id__in={r[0] for r in rows},
                timestamp__gte=first - pad,
                timestamp__lte=last + pad,
            )
            .order_by("timestamp")
            .values_list("timestamp", "price_usd")
        )
        stride = max(1, len(history) // MAX_PRICE_POINTS)
        points = history[::stride]
        # Every trade is a point of its own, so each marker sits on the line where it traded.
        executed = [(r[4], r[3]) for r in rows if r[2] == PaperTrade.Status.EXECUTED and r[3] > 0]
        series = _line(sorted([*points, *executed], key=lambda p: p[0]))
        markers = [
            {
                "time": _epoch(at),
                "side": side,
                "status": status,
                "price": str(exec_price),
            }
            for _chain, side, status, exec_price, at in rows
        ]
        tokens[symbol] = {"prices": series, "markers": markers}
    return {
        "account": str(account.account_id),
        "equity": _line([(p.at, p.value_usd) for p in equity]),
        "drawdown": _line([(p.at, -p.drawdown_percent) for p in equity]),
        "tokens": tokens,
    }


def analytics_figures(account: PaperTradingAccount) -> dict[str, Any]:
    """The analytics page's stat cards and its per-token and per-gas-strategy tables."""
    m = portfolio.latest_metrics(account)
    per_token = [
        {
            "token": r.token,
            "trades": r.trades,
            "reverted": r.reverted,
            "closes": r.closes,
            "win_rate": d.percent(Decimal(r.wins) / r.closes * 100) if r.closes else d.DASH,
            "realized": d.signed_usd(r.realized_pnl_usd),
            "fees": d.usd(r.fees_usd),
            "gas": d.cost(r.gas_usd),
            "net": d.signed_usd(r.net_pnl_usd),
            "net_tone": d.tone(r.net_pnl_usd),
            "volume": d.usd(r.volume_usd),
        }
        for r in analytics.per_token(account)
    ]
    per_gas_strategy = [
        {
            "strategy": r.strategy.replace("_", " "),
            "trades": r.trades,
            "gas": d.cost(r.gas_usd),
            "delay": d.ratio(r.mean_inclusion_delay_blocks, 1),
            "revert_rate": d.percent(r.revert_rate_percent),
            "drop_rate": d.percent(r.drop_rate_percent),
            "sandwiched": r.sandwiched,
            "mev": d.cost(r.mev_cost_usd),
        }
        for r in analytics.per_gas_strategy(account)
    ]
    figures = {
        "sharpe": d.ratio(m.sharpe_ratio if m else None),
        "sortino": d.ratio(m.sortino_ratio if m else None),
        "max_drawdown": d.percent(m.max_drawdown_percent if m else None, 2),
        "profit_factor": d.ratio(m.profit_factor if m else None),
        "win_rate": d.percent(m.win_rate if m else None),
        "closed": m.closed_trades if m else 0,
        "fees": d.usd(account.total_fees_usd),
        "gas": d.usd(account.total_gas_usd),
    }
    return {"figures": figures, "per_token": per_token, "per_gas_strategy": per_gas_strategy}


@signed_in
@require_GET
def analytics_series(request: HttpRequest) -> JsonResponse:
    """The charts' series; with ``?figures=1`` also the stat cards and per-token table."""
    _, account = _accounts(request)
    if account is None:
        raise Http404("you have no paper trading account yet")
    body = chart_series(account)
    if request.GET.get("figures") == "1":
        body.update(analytics_figures(account))
    return JsonResponse(body)


@signed_in
@require_GET
def analytics_page(request: HttpRequest) -> HttpResponse:
    accounts, account = _accounts(request)
    if account is None:
        return _no_account(request, accounts)
    series = chart_series(account)
    return _page(
        request,
        "paper_trading/analytics.html",
        {
            "nav": "analytics",
            "accounts": accounts,
            "account": account,
            **analytics_figures(account),
            "series": series,
            "chart_tokens": list(series["tokens"]),
            "series_url": f"{reverse('web-analytics-series')}?account={account.account_id}",
            "ws_path": f"/ws/paper-trading/{account.account_id}/",
            "export_url": f"{reverse('api-export')}?account={account.account_id}",
        },
    )
