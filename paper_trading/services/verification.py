"""Reconciliation: do the stored books agree with themselves and with the trade history?

Uses the ledger definitions of `engine.portfolio` (cost basis net of swap fee; realized P&L
before fees and gas), recomputed independently from the trade rows. Also catches what a crash
can leave behind: a tick written twice, and a session still RUNNING after its bot died.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from paper_trading.models import PaperTrade, PaperTradingAccount, PaperTradingSession
from paper_trading.services.bot import ACTIVE_STATUSES, worker_alive

ZERO = Decimal(0)


@dataclass
class AccountReport:
    account: PaperTradingAccount
    mismatches: list[str] = field(default_factory=list)
    #: Rows beyond the first of a (session, time, token, side, reason): a tick written twice.
    duplicate_trades: int = 0
    #: Ids of active sessions whose bot is gone (killed, crashed), not yet resumed or closed.
    sessions_left_running: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def _check(
    report: AccountReport, label: str, stored: Decimal | int, expected: Decimal | int
) -> None:
    if stored != expected:
        report.mismatches.append(f"{label}: stored {stored}, expected {expected}")


def verify_account(account: PaperTradingAccount) -> AccountReport:
    account.refresh_from_db()
    report = AccountReport(account)
    trades = list(account.trades.order_by("created_at", "trade_id"))
    open_positions = list(account.positions.filter(is_open=True))

    # 1. The ledger identity on the stored account.
    cost = sum((p.cost_basis_usd for p in open_positions), ZERO)
    _check(
        report,
        "ledger: cash + open positions at cost",
        account.current_balance_usd + cost,
        account.initial_balance_usd
        + account.realized_pnl_usd
        - account.total_fees_usd
        - account.total_gas_usd,
    )

    # 2. Account totals against the trade history.
    executed = [t for t in trades if t.status == PaperTrade.Status.EXECUTED]
    cash = account.initial_balance_usd
    for t in trades:
        cash -= t.gas_cost_usd
        if t.status == PaperTrade.Status.EXECUTED:
            cash += -t.amount_in if t.side == PaperTrade.Side.BUY else t.amount_out
    _check(report, "cash from trades", account.current_balance_usd, cash)
    _check(
        report,
        "fees from trades",
        account.total_fees_usd,
        sum((t.swap_fee_usd for t in executed), ZERO),
    )
    _check(
        report,
        "gas from trades",
        account.total_gas_usd,
        sum((t.gas_cost_usd for t in trades), ZERO),
    )
    _check(
        report,
        "realized P&L from trades",
        account.realized_pnl_usd,
        sum((t.realized_pnl_usd for t in executed), ZERO),
    )

    # 3. Each position against the trades that built it.
    quantity: dict[str, Decimal] = defaultdict(lambda: ZERO)
    cost_basis: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for t in executed:
        key = f"{t.chain_id}:{t.token_symbol}"
        if t.side == PaperTrade.Side.BUY:
            quantity[key] += t.amount_out
            cost_basis[key] += t.amount_in - t.swap_fee_usd
        else:
            quantity[key] -= t.amount_in
            # realized = proceeds + fee - cost sold, so the cost sold is recoverable exactly.
            cost_basis[key] -= t.amount_out + t.swap_fee_usd - t.realized_pnl_usd
        if quantity[key] < 0:
            report.mismatches.append(f"{key}: trade history sells more than it bought")
    held = {f"{p.chain_id}:{p.token_symbol}": p for p in open_positions}
    for key in sorted(set(quantity) | set(held)):
        position = held.get(key)
        _check(report, f"{key} quantity", position.quantity if position else ZERO, quantity[key])
        _check(
            report,
            f"{key} cost basis",
            position.cost_basis_usd if position else ZERO,
            cost_basis[key] if quantity[key] else ZERO,
        )

    # 4. No trade written twice: one trade per token, side and reason per session tick.
    keys = Counter((t.session_id, t.created_at, t.token_symbol, t.side, t.reason) for t in trades)
    for (_, at, symbol, side, _), count in keys.items():
        if count > 1:
            report.duplicate_trades += count - 1
            report.mismatches.append(f"duplicate trade {symbol} {side} at {at}: {count} rows")

    # 5. Session counters against rows.
    for session in account.sessions.all():
        _verify_session(report, session)

    # 6. No session left active by a bot that is gone: a restart or the reaper must take it.
    for session in account.sessions.filter(status__in=ACTIVE_STATUSES):
        if not worker_alive(session):
            report.sessions_left_running.append(str(session.session_id))
            report.mismatches.append(
                f"session {session.session_id} left {session.status}: its bot (pid "
                f"{session.worker_pid} on {session.worker_host or 'an unknown host'}, last "
                f"heartbeat {session.heartbeat_at or session.started_at:%Y-%m-%d %H:%M:%S} UTC) "
                "is gone; running the bot again resumes it (the reaper resumes or closes it)"
            )
    return report


def _verify_session(report: AccountReport, session: PaperTradingSession) -> None:
    label = f"session {session.session_id}"
    trades = session.trades
    _check(report, f"{label} total_trades", session.total_trades, trades.count())
    _check(
        report,
        f"{label} successful_trades",
        session.successful_trades,
        trades.filter(status=PaperTrade.Status.EXECUTED).count(),
    )
    _check(
        report,
        f"{label} failed_trades",
        session.failed_trades,
        trades.filter(status=PaperTrade.Status.REVERTED).count(),
    )
    if session.pruned_at is None:  # the retention clean-up deletes old thoughts on purpose
        _check(report, f"{label} total_thoughts", session.total_thoughts, session.thoughts.count())
