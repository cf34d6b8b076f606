"""A backtest's result as one JSON document, and the summary and HTML report drawn from it.

The JSON (every Decimal as a string) is the single source: the printed summary and the HTML
report are rendered from it, so the three never disagree. The HTML report is one file that
opens from disk anywhere: the chart library, the dashboard's stylesheet and its chart helpers
are inlined, and no URL is fetched.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.staticfiles import finders
from django.template.loader import render_to_string

from paper_trading.engine.backtest import BacktestResult, PreparedBacktest
from paper_trading.engine.metrics import TradeGroup, market_change_percent, mean_hold_seconds
from paper_trading.management.tables import text_table
from paper_trading.web import display as d

FORMAT = "dexpaper-backtest/1"
#: Static files inlined into the report, in load order.
_INLINED_SCRIPTS = (
    "paper_trading/vendor/lightweight-charts.standalone.production.js",
    "paper_trading/js/charts.js",
)
_INLINED_STYLE = "paper_trading/css/app.css"


def _text(value: Any) -> Any:
    """JSON-ready: Decimals (and ids) as strings so no digit is lost, times as ISO 8601."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_text(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _group(r: TradeGroup, name: str | None) -> dict[str, Any]:
    """A group of trades as a JSON row, its key under `name` (left out for None)."""
    row = dataclasses.asdict(r)
    key = row.pop("key")
    if name is not None:
        row = {name: key, **row}
    return {**row, "win_rate_percent": r.win_rate_percent, "net_pnl_usd": r.net_pnl_usd}


def result_document(
    prepared: PreparedBacktest, result: BacktestResult, breakdown: str = "month"
) -> dict[str, Any]:
    """Everything about the run: its config, metrics, per-token, per-exit-reason and
    per-period (`breakdown`: day, week or month) results, series and trades."""
    config = prepared.config
    strategy = prepared.strategy
    perf = result.performance
    first = result.equity[0].at if result.equity else None
    last = result.equity[-1].at if result.equity else None
    metrics = {
        "ticks": result.ticks,
        # Ticks on which the feed had no usable prices (e.g. no native price to value gas).
        "ticks_without_prices": result.ticks - len(result.equity),
        "trades": perf.total_trades,
        "reverted_trades": perf.reverted_trades,
        "closed_trades": perf.closed_trades,
        "winning_trades": perf.winning_trades,
        "losing_trades": perf.losing_trades,
        "win_rate_percent": perf.win_rate_percent,
        "initial_balance_usd": result.portfolio.initial_balance_usd,
        "final_value_usd": result.portfolio.total_value_usd,
        "total_pnl_usd": perf.total_pnl_usd,
        "total_return_percent": perf.return_percent,
        "annualized_return_percent": result.annualized_return_percent,
        "realized_pnl_usd": perf.realized_pnl_usd,
        "unrealized_pnl_usd": perf.unrealized_pnl_usd,
        "fees_usd": perf.fees_usd,
        "gas_usd": perf.gas_usd,
        "sharpe_ratio": perf.sharpe_ratio,
        "sortino_ratio": perf.sortino_ratio,
        "max_drawdown_percent": perf.max_drawdown_percent,
        "profit_factor": perf.profit_factor,
        "exposure_percent": result.exposure_percent,
        # Buy and hold over the same ticks, as a benchmark for the strategy's return.
        "market_change_percent": market_change_percent(prepared.prices.values()),
        "mean_hold_seconds": mean_hold_seconds(result.trades),
        "best_trade_usd": perf.best_trade_usd,
        "worst_trade_usd": perf.worst_trade_usd,
    }
    drawdown = result.drawdown_percent
    document = {
        "format": FORMAT,
        "config": {
            "strategy": config.strategy,
            "strategy_name": strategy.name,
            # Every declared parameter's value, defaults filled in, so the run can be repeated.
            "params": type(strategy).resolve_params(config.params),
            "warmup_bars": strategy.warmup_bars,
            "chain": prepared.chain.slug,
            "chain_id": prepared.chain.chain_id,
            "tokens": [t.symbol for t in prepared.universe],
            "period": {
                "from": config.start,
                "to": config.end,
                "first_tick": first,
                "last_tick": last,
            },
            "bar": config.bar,
            "data_dir": str(config.data_dir),
            "data_files": [{"path": str(p), "sha256": _sha256(p)} for p in prepared.data_files],
            "fee_model": config.fee_model,
            "seed": config.seed,
            "initial_balance_usd": config.initial_balance_usd,
        },
        "metrics": metrics,
        "per_token": [_group(r, "symbol") for r in result.per_token],
        "per_exit_reason": [_group(r, "reason") for r in result.per_exit_reason],
        "breakdown": {
            "period": breakdown,
            "rows": [
                {
                    "start": r.start.isoformat(),
                    "start_value_usd": r.start_value_usd,
                    "end_value_usd": r.end_value_usd,
                    "return_percent": r.return_percent,
                    **_group(r.trades, None),
                }
                for r in result.breakdown(breakdown)
            ],
        },
        "equity": [
            {"time": p.at, "value_usd": p.value_usd, "drawdown_percent": dd}
            for p, dd in zip(result.equity, drawdown, strict=True)
        ],
        "prices": {s: [[at, price] for at, price in pts] for s, pts in prepared.prices.items()},
        "trades": [dataclasses.asdict(t) for t in result.trades],
    }
    return dict(_text(document))


def summary_text(doc: Mapping[str, Any]) -> str:
    """The table the command prints: headline figures, then one line per token."""
    m = doc["metrics"]
    c = doc["config"]
    period = c["period"]
    lines = [
        f"Backtest {c['strategy_name']} on {c['chain']} ({c['bar']} bars, fee model "
        f"{c['fee_model']}): {d.when(period['first_tick'])} .. {d.when(period['last_tick'])} UTC, "
        f"{m['ticks']} ticks",
        f"  trades          {m['trades']} ({m['reverted_trades']} reverted swaps)",
        f"  win rate        {d.percent(m['win_rate_percent'])} of {m['closed_trades']} "
        "closing trades",
        f"  total return    {d.percent(m['total_return_percent'], 2)} "
        f"({d.signed_usd(m['total_pnl_usd'])}, {d.usd(m['initial_balance_usd'])} -> "
        f"{d.usd(m['final_value_usd'])})",
        f"  annualised      {d.percent(m['annualized_return_percent'], 2)}",
        f"  Sharpe          {d.ratio(m['sharpe_ratio'])}",
        f"  Sortino         {d.ratio(m['sortino_ratio'])}",
        f"  max drawdown    {d.percent(m['max_drawdown_percent'], 2)}",
        f"  profit factor   {d.ratio(m['profit_factor'])}",
        f"  swap fees       {d.cost(m['fees_usd'])}",
        f"  gas             {d.cost(m['gas_usd'])}",
        f"  reverted swaps  {m['reverted_trades']}",
        f"  exposure        {d.percent(m['exposure_percent'])} of the portfolio in tokens "
        "on average",
        f"  market change   {d.percent(m['market_change_percent'], 2)} (buy and hold, the "
        "tokens' average price change)",
        f"  average hold    {_duration(m['mean_hold_seconds'])} per closed position",
        *(
            [
                f"  no prices       {m['ticks_without_prices']} ticks not traded: a gap in the "
                "data, or no native-token price to value gas"
            ]
            if m["ticks_without_prices"]
            else []
        ),
    ]
    tables = [
        (
            ("token", "trades", "win rate", "realized P&L", "fees", "gas"),
            [
                (
                    r["symbol"],
                    str(r["trades"]),
                    d.percent(r["win_rate_percent"]),
                    d.signed_usd(r["realized_pnl_usd"]),
                    d.cost(r["fees_usd"]),
                    d.cost(r["gas_usd"]),
                )
                for r in doc["per_token"]
            ],
        ),
        (
            ("exit reason", "exits", "reverted", "win rate", "realized P&L", "net P&L"),
            [
                (
                    r["reason"],
                    str(r["trades"]),
                    str(r["reverted"]),
                    d.percent(r["win_rate_percent"]),
                    d.signed_usd(r["realized_pnl_usd"]),
                    d.signed_usd(r["net_pnl_usd"]),
                )
                for r in doc["per_exit_reason"]
            ],
        ),
        (
            (doc["breakdown"]["period"], "return", "end value", "trades", "win rate", "net P&L"),
            [
                (
                    r["start"],
                    d.percent(r["return_percent"], 2),
                    d.usd(r["end_value_usd"]),
                    str(r["trades"]),
                    d.percent(r["win_rate_percent"]),
                    d.signed_usd(r["net_pnl_usd"]),
                )
                for r in doc["breakdown"]["rows"]
            ],
        ),
    ]
    for header, rows in tables:
        lines += ["", *(f"  {line}" for line in text_table(header, rows))] if rows else []
    if not doc["per_token"]:
        lines += ["", "  (no trades)"]
    return "\n".join(lines)


def _duration(seconds: float | None) -> str:
    """A holding time as days, hours and minutes ("2d 3h 05m"); "-" for none."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours}h {minutes:02d}m" if days else f"{hours}h {minutes:02d}m"


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp())


def _chart_data(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The series the report's charts draw, in the chart library's shape (time in epoch s)."""
    markers: dict[str, list[dict[str, Any]]] = {s: [] for s in doc["prices"]}
    for t in doc["trades"]:
        markers.setdefault(t["symbol"], []).append(
            {"time": _epoch(t["created_at"]), "side": t["side"], "status": t["status"]}
        )
    return {
        "equity": [
            {"time": _epoch(p["time"]), "value": float(p["value_usd"])} for p in doc["equity"]
        ],
        "drawdown": [
            {"time": _epoch(p["time"]), "value": -float(p["drawdown_percent"])}
            for p in doc["equity"]
        ],
        "tokens": {
            symbol: {
                "prices": [{"time": _epoch(at), "value": float(price)} for at, price in points],
                "markers": markers[symbol],
            }
            for symbol, points in doc["prices"].items()
        },
    }


def _static(path: str) -> str:
    found = finders.find(path)
    if not found:
        raise FileNotFoundError(
            f"{path} is missing from the static files: run `make assets` to install it"
        )
    return Path(str(found)).read_text(encoding="utf-8")


def _group_cells(r: Mapping[str, Any]) -> dict[str, Any]:
    """A group of trades' figures (`_group` in the JSON) as the report's table cells show them."""
    return {
        "trades": r["trades"],
        "reverted": r["reverted"],
        "closes": r["closes"],
        "win_rate": d.percent(r["win_rate_percent"]),
        "volume": d.usd(r["volume_usd"]),
        "realized": d.signed_usd(r["realized_pnl_usd"]),
        "fees": d.cost(r["fees_usd"]),
        "gas": d.cost(r["gas_usd"]),
        "net": d.signed_usd(r["net_pnl_usd"]),
        "net_tone": d.tone(r["net_pnl_usd"]),
    }


def render_html(doc: Mapping[str, Any]) -> str:
    """The self-contained report page."""
    m = doc["metrics"]
    figures = [
        ("Total return", d.percent(m["total_return_percent"], 2), d.signed_usd(m["total_pnl_usd"])),
        ("Annualised return", d.percent(m["annualized_return_percent"], 2), ""),
        ("Sharpe / Sortino", f"{d.ratio(m['sharpe_ratio'])} / {d.ratio(m['sortino_ratio'])}", ""),
        ("Max drawdown", d.percent(m["max_drawdown_percent"], 2), ""),
        ("Profit factor", d.ratio(m["profit_factor"]), ""),
        (
            "Trades",
            str(m["trades"]),
            f"{m['reverted_trades']} reverted, win rate {d.percent(m['win_rate_percent'])}",
        ),
        ("Fees / gas", f"{d.cost(m['fees_usd'])} / {d.cost(m['gas_usd'])}", ""),
        ("Exposure", d.percent(m["exposure_percent"]), "average share in tokens"),
        (
            "Market change",
            d.percent(m["market_change_percent"], 2),
            "buy and hold, for comparison",
        ),
        ("Average hold", _duration(m["mean_hold_seconds"]), "per closed position"),
    ]
    per_token = [{"token": r["symbol"], **_group_cells(r)} for r in doc["per_token"]]
    exits = [{"reason": r["reason"], **_group_cells(r)} for r in doc["per_exit_reason"]]
    breakdown = doc["breakdown"]
    periods = [
        {
            "start": r["start"],
            "start_value": d.usd(r["start_value_usd"]),
            "end_value": d.usd(r["end_value_usd"]),
            "return": d.percent(r["return_percent"], 2),
            "return_tone": d.tone(r["return_percent"]),
            **_group_cells(r),
        }
        for r in breakdown["rows"]
    ]
    trades = [
        {
            "when": d.when(t["created_at"]),
            "symbol": t["symbol"],
            "side": t["side"],
            "status": t["status"],
            "reason": t["reason"],
            "amount_in": f"{d.quantity(t['amount_in'])} {t['token_in']}",
            "amount_out": f"{d.quantity(t['amount_out'])} {t['token_out']}",
            "price": d.price(t["execution_price_usd"]),
            "fee": d.cost(t["fee_usd"]),
            "impact": d.ratio(t["price_impact_bps"], 1),
            "slippage": d.ratio(t["slippage_bps"], 1),
            "gas": d.cost(t["gas_usd"]),
            "realized": d.signed_usd(t["realized_pnl_usd"]),
            "net": d.signed_usd(t["net_pnl_usd"]),
            "net_tone": d.tone(t["net_pnl_usd"]),
            "revert_reason": t["revert_reason"],
        }
        for t in doc["trades"]
    ]
    c = doc["config"]
    return render_to_string(
        "paper_trading/backtest_report.html",
        {
            "config": c,
            "first_tick": d.when(c["period"]["first_tick"]),
            "last_tick": d.when(c["period"]["last_tick"]),
            "initial_balance": d.usd(c["initial_balance_usd"]),
            "figures": figures,
            "per_token": per_token,
            "exits": exits,
            "period": breakdown["period"],
            "periods": periods,
            "trades": trades,
            "chart_tokens": list(doc["prices"]),
            "charts": _chart_data(doc),
            "style": _static(_INLINED_STYLE),
            "scripts": [_static(p) for p in _INLINED_SCRIPTS],
        },
    )


def write_outputs(doc: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """Write `backtest.json` and `backtest.html` into `folder` (created if needed)."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path = folder / "backtest.json"
    html_path = folder / "backtest.html"
    json_path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    html_path.write_text(render_html(doc), encoding="utf-8")
    return json_path, html_path
