"""`python -m bench.feed_faults --minutes 10`: a live paper bot through CoinGecko's bad days.

The real command, `manage.py run_paper_bot --prices live`, runs in a subprocess on a fresh
SQLite database with its CoinGecko base URL pointing at the loopback fake
(tests/fakes/coingecko.py). The fake switches at random between healthy answers and faults:
slow (past the client's timeout), HTTP 429 (with or without Retry-After), 5xx, garbage (every
kind the fake knows: not JSON, wrong shapes, out-of-range numbers, future timestamps, a lying
Content-Encoding or charset), stale (last_updated_at older than the bot's limit) and down
(connection refused). Each segment serves a WETH price of its own, so a trade's price says
which segment it came from. While the price changes the fake answers 503, so no price is ever
served in two modes.

The bot's strategy (`FlipWeth`, below) trades WETH on every tick it has prices, so a tick
without a trade is one the feed refused. Checked:

* no trade on a price the fake did not serve fresh: the quote behind every trade (its decision's
  price) is a healthy segment's, and the trade was made while that segment served (or within
  the price cache TTL);
* no crash: the process runs to the end, stops cleanly on SIGTERM, the session ends STOPPED, no
  ERROR log line or traceback, and the stored books reconcile;
* every outage is reported (a BLOCKED thought, the session PAUSED with the reason) and followed
  by a "price feed back" thought, and trading resumes in every healthy period after a fault
  within the backoff bound.

Prices are scaled to a 1 s tick (cache TTL 0.5 s, timeout 0.5 s, backoff 0.25-1.5 s) so ten
minutes hold about a hundred faults. Prints a table, saves bench/results/feed-faults-<stamp>.json
and feed-faults-latest.json, and exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from bench import report as results_file
from paper_trading.engine.strategies.base import Action, Decision, MarketView, Strategy
from paper_trading.management.tables import TARGET_HEADER, text_table

if TYPE_CHECKING:
    from paper_trading.models import PaperTradingAccount
    from tests.fakes.coingecko import FakeCoinGecko

ROOT = Path(__file__).resolve().parent.parent
HEALTHY = "healthy"
FAULTS = ("slow", "rate_limited", "server_error", "garbage", "stale", "down")
ACCOUNT = "Feed faults"
#: Environment the bot must not inherit: other services, real keys, alert channels.
_FOREIGN_ENV = (
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "COINGECKO_API_KEY",
    "COINGECKO_API_PLAN",
    "ALERT_WEBHOOK_URL",
    "TELEGRAM_BOT_TOKEN",
    "TELEGRAM_CHAT_ID",
    "PRICE_CACHE_KEY_PREFIX",
)
#: Seconds the bot may take to start and make its first trade.
STARTUP_LIMIT_SECONDS = 120.0
#: How often the session row is read while the bot runs (ticks are 1 s apart).
POLL_SECONDS = 0.2


class FlipWeth(Strategy):
    """Trades WETH on every priced tick: buys $50 when flat, sells everything when holding."""

    name = "flip_weth"

    def decide(self, view: MarketView) -> Decision:
        zero = Decimal(0)
        if view.symbol != "WETH":
            return Decision(Action.HOLD, view.symbol, zero, zero, zero, zero, zero, "WETH only")
        if view.position is None:
            return Decision(
                Action.BUY,
                "WETH",
                Decimal(50),
                zero,
                Decimal(90),
                Decimal(10),
                Decimal(90),
                f"flat: buy $50 of WETH at {view.price}",
            )
        return Decision(
            Action.SELL,
            "WETH",
            zero,
            Decimal(1),
            Decimal(90),
            Decimal(10),
            Decimal(90),
            f"holding: sell all WETH at {view.price}",
        )


@dataclass(frozen=True)
class Timing:
    """The bot's price settings for the run, scaled to a 1 s tick."""

    tick_seconds: int = 1
    cache_ttl_seconds: float = 0.5
    timeout_seconds: float = 0.5
    backoff_base_seconds: float = 0.25
    backoff_max_seconds: float = 1.5
    retry_after_max_seconds: int = 2
    max_age_seconds: float = 60.0
    calls_per_minute: float = 600.0
    fault_seconds: tuple[float, float] = (1.5, 4.0)

    @property
    def resume_bound_seconds(self) -> float:
        """Longest a healthy feed may wait for a trade: the longest backoff (cache.py adds up to
        50 % jitter) or Retry-After, the next tick, one timed-out request and a second of margin.
        """
        wait = max(self.backoff_max_seconds * 1.5, float(self.retry_after_max_seconds))
        return wait + self.tick_seconds + self.timeout_seconds + 1.0

    @property
    def healthy_seconds(self) -> tuple[float, float]:
        """Healthy periods outlast the resume bound, so each one must see a trade."""
        low = self.resume_bound_seconds + self.tick_seconds
        return low, low + 3.0

    def bot_env(self, fake_url: str, bot_max_age: float | None) -> dict[str, str]:
        return {
            "COINGECKO_API_URL": fake_url,
            "COINGECKO_TIMEOUT_SECONDS": str(self.timeout_seconds),
            "COINGECKO_CALLS_PER_MINUTE": str(self.calls_per_minute),
            "PRICE_CACHE_TTL_SECONDS": str(self.cache_ttl_seconds),
            "PRICE_BACKOFF_BASE_SECONDS": str(self.backoff_base_seconds),
            "PRICE_BACKOFF_MAX_SECONDS": str(self.backoff_max_seconds),
            "PRICE_MAX_AGE_SECONDS": str(bot_max_age or self.max_age_seconds),
        }


@dataclass
class Segment:
    """A stretch of time during which the fake behaves one way and serves one WETH price."""

    mode: str
    #: The mode's setting: seconds (slow, stale), Retry-After, HTTP status or garbage kind.
    setting: str | float | int | None
    weth_usd: str
    #: Planned length; `start` and `end` are the wall-clock times it actually ran.
    seconds: float
    start: float = 0.0
    end: float = 0.0

    @property
    def detail(self) -> str:
        if self.mode == "slow":
            return f"answers after {self.setting} s"
        if self.mode == "rate_limited":
            return "HTTP 429" + (f", Retry-After {self.setting}" if self.setting else "")
        if self.mode == "server_error":
            return f"HTTP {self.setting}"
        if self.mode == "garbage":
            return str(self.setting)
        if self.mode == "stale":
            return f"prices {float(self.setting or 0) / 60:.0f} min old"
        if self.mode == "down":
            return "connection refused"
        return "fresh prices"


def plan(
    rng: random.Random,
    seconds: float,
    kinds: Sequence[str],
    timing: Timing,
    garbage_kinds: Sequence[str],
    used: set[Decimal],
) -> list[Segment]:
    """Faults in random order (each kind once per round, garbage kinds likewise), a healthy period
    after about half of them, and healthy at the end; at least `seconds` long. Every segment gets
    a price of its own (not in `used`, which collects them)."""
    segments: list[Segment] = []
    bag: list[str] = []
    garbage_bag: list[str] = []

    def next_garbage() -> str:
        if not garbage_bag:
            garbage_bag.extend(rng.sample(list(garbage_kinds), len(garbage_kinds)))
        return garbage_bag.pop()

    total = 0.0
    while total < seconds or not segments or segments[-1].mode != HEALTHY:
        previous = segments[-1].mode if segments else HEALTHY
        if previous != HEALTHY and (total >= seconds or rng.random() < 0.5):
            mode, setting = HEALTHY, None
            length = rng.uniform(*timing.healthy_seconds)
        else:
            if not bag:
                bag = rng.sample(list(kinds), len(kinds))
            mode = bag.pop()
            setting = _setting(rng, mode, timing, next_garbage)
            length = rng.uniform(*timing.fault_seconds)
        segments.append(Segment(mode, setting, str(_new_price(rng, used)), round(length, 2)))
        total += length
    return segments


def _setting(
    rng: random.Random, mode: str, timing: Timing, next_garbage: Callable[[], str]
) -> str | float | int | None:
    if mode == "slow":
        return round(rng.uniform(1.5, 3.0) * timing.timeout_seconds, 2)
    if mode == "rate_limited":
        return rng.choice([None, 1, timing.retry_after_max_seconds])
    if mode == "server_error":
        return rng.choice([500, 502, 503, 504])
    if mode == "garbage":
        return next_garbage()
    if mode == "stale":
        return round(rng.uniform(timing.max_age_seconds + 5, 3 * 3600), 1)
    return None


def _new_price(rng: random.Random, used: set[Decimal]) -> Decimal:
    """A WETH price near $3,000 that no other segment serves."""
    while True:
        price = Decimal(rng.randint(299_000, 301_000)).scaleb(-2)
        if price not in used:
            used.add(price)
            return price


def apply(fake: FakeCoinGecko, segment: Segment) -> None:
    """Switch the fake to `segment`, answering 503 while the price changes."""
    fake.up()
    fake.server_error(503)
    fake.set_price("weth", Decimal(segment.weth_usd), change=Decimal("1.5"))
    setting = segment.setting
    if segment.mode == HEALTHY:
        fake.healthy()
    elif segment.mode == "slow":
        fake.slow(float(setting or 0))
    elif segment.mode == "rate_limited":
        fake.rate_limited(retry_after=setting)
    elif segment.mode == "server_error":
        fake.server_error(int(setting or 500))
    elif segment.mode == "garbage":
        fake.garbage(setting)  # type: ignore[arg-type]
    elif segment.mode == "stale":
        fake.stale(timedelta(seconds=float(setting or 0)))
    elif segment.mode == "down":
        fake.down()
    else:
        raise ValueError(f"unknown mode {segment.mode!r}")


# -- what was seen ------------------------------------------------------------------------


@dataclass
class TickSeen:
    number: int
    at: float
    status: str
    reason: str


@dataclass
class TradeSeen:
    at: float
    side: str
    status: str
    #: The quote the decision was made on (its thought's market data). The trade's own mid
    #: price is where the simulated pool stood at inclusion, after the price moved while the
    #: swap was pending, so it is not a price any feed served.
    quote_usd: str


@dataclass
class ThoughtSeen:
    at: float
    decision: str
    reasoning: str


@dataclass
class Observations:
    """Everything the run recorded; `analyse` turns it into figures and failures."""

    seed: int
    timing: Timing
    #: The startup segment (healthy until the first trade), then the plan.
    segments: list[Segment]
    ticks: list[TickSeen] = field(default_factory=list)
    total_ticks: int = 0
    #: Tick times at which the bot had prices (it wrote a WETH thought).
    priced_at: list[float] = field(default_factory=list)
    trades: list[TradeSeen] = field(default_factory=list)
    #: Thoughts about the feed itself (no token): outages and recoveries.
    feed_thoughts: list[ThoughtSeen] = field(default_factory=list)
    exit_code: int | None = None
    #: What went wrong with the run itself (the bot never traded, would not stop).
    problem: str = ""
    #: Set if the bot exited before it was asked to stop.
    died_at: float | None = None
    final_status: str = ""
    final_reason: str = ""
    log_errors: list[str] = field(default_factory=list)
    ledger_problems: list[str] = field(default_factory=list)
    #: The bot's database and logs (stdout, stderr), kept when the run fails.
    workdir: str = ""


# -- the run ------------------------------------------------------------------------------


def run(
    seconds: float,
    seed: int,
    kinds: Sequence[str],
    timing: Timing,
    bot_max_age: float | None = None,
) -> Observations:
    """Start the fake and the bot, play the plan, stop the bot, read what it stored."""
    workdir = Path(tempfile.mkdtemp(prefix="feed-faults-"))
    os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bot.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dexproject.settings")
    import django

    django.setup()
    from django.core.management import call_command

    # The bot process imports this module for FlipWeth; only the driver needs the fake.
    from tests.fakes.coingecko import GARBAGE_KINDS, FakeCoinGecko
    from tests.paper_trading.live_support import price_all

    call_command("migrate", verbosity=0, interactive=False)
    account = _account()
    rng = random.Random(seed)
    used: set[Decimal] = set()
    startup = Segment(HEALTHY, None, str(_new_price(rng, used)), 0.0)
    segments = [startup, *plan(rng, seconds, kinds, timing, GARBAGE_KINDS, used)]
    seen = Observations(seed, timing, segments)
    with FakeCoinGecko() as fake:
        price_all(fake)
        startup.start = time.time()
        apply(fake, startup)
        bot = _start_bot(workdir, fake.url, timing, bot_max_age)
        try:
            if _wait_for_first_trade(bot, account, seen):
                for previous, segment in pairwise(segments):
                    segment.start = previous.end = time.time()
                    apply(fake, segment)
                    if not _watch(bot, account, seen, segment.start + segment.seconds):
                        break
            played = [s for s in segments if s.start]
            played[-1].end = played[-1].end or time.time()
            seen.segments = played  # a bot that died early leaves the rest unplayed
            _stop(bot, seen)
        finally:
            if bot.poll() is None:
                bot.kill()
                bot.wait()
    _read_results(account, seen)
    seen.log_errors = _log_errors(workdir / "bot.stderr")
    seen.workdir = str(workdir)
    return seen


def _account() -> PaperTradingAccount:
    """The bot's account: WETH only, and limits that never stop a trade a tick could make."""
    from django.contrib.auth.models import User

    from paper_trading.models import PaperStrategyConfiguration
    from paper_trading.services.accounts import create_account

    account = create_account(User.objects.create_user("feed-faults"), ACCOUNT)
    PaperStrategyConfiguration.objects.filter(account=account).update(
        allowed_tokens=["WETH"],
        max_daily_trades=10_000,
        max_consecutive_failures=100,
        slippage_tolerance_percent=Decimal(5),
    )
    return account


def _start_bot(
    workdir: Path, fake_url: str, timing: Timing, bot_max_age: float | None
) -> subprocess.Popen[bytes]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _FOREIGN_ENV and not name.startswith(("RPC_URL_", "WS_RPC_URL_"))
    }
    env |= timing.bot_env(fake_url, bot_max_age) | {
        "PRICE_CACHE_DIR": str(workdir / "price-cache"),
        "LOG_FORMAT": "json",
    }
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "run_paper_bot",
        "--account",
        ACCOUNT,
        "--prices",
        "live",
        "--chain",
        "base",
        "--tick-interval",
        str(timing.tick_seconds),
        "--strategy",
        f"bench.feed_faults.{FlipWeth.__name__}",
        "--new-session",
        "--verbosity",
        "1",
    ]
    with (workdir / "bot.stdout").open("wb") as out, (workdir / "bot.stderr").open("wb") as err:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)


def _wait_for_first_trade(
    bot: subprocess.Popen[bytes], account: PaperTradingAccount, seen: Observations
) -> bool:
    from paper_trading.models import PaperTrade

    deadline = time.time() + STARTUP_LIMIT_SECONDS
    while not PaperTrade.objects.filter(account=account).exists():
        if not _watch(bot, account, seen, time.time() + POLL_SECONDS):
            return False
        if time.time() > deadline:
            seen.problem = f"no trade within {STARTUP_LIMIT_SECONDS:.0f} s of starting the bot"
            return False
    return True


def _watch(
    bot: subprocess.Popen[bytes], account: PaperTradingAccount, seen: Observations, until: float
) -> bool:
    """Record each tick the bot commits until `until`; False if the bot has exited."""
    from paper_trading.models import PaperTradingSession

    while True:
        if bot.poll() is not None:
            seen.died_at = time.time()
            return False
        row = (
            PaperTradingSession.objects.filter(account=account)
            .values("total_ticks", "last_tick_at", "status", "status_reason")
            .first()
        )
        if (
            row
            and row["last_tick_at"]
            and (not seen.ticks or seen.ticks[-1].number != row["total_ticks"])
        ):
            seen.ticks.append(
                TickSeen(
                    row["total_ticks"],
                    row["last_tick_at"].timestamp(),
                    row["status"],
                    row["status_reason"],
                )
            )
        left = until - time.time()
        if left <= 0:
            return True
        time.sleep(min(POLL_SECONDS, left))


def _stop(bot: subprocess.Popen[bytes], seen: Observations) -> None:
    """SIGTERM, as a user's Ctrl+C or a process manager would: the bot finishes its tick."""
    if bot.poll() is None:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(timeout=60)
        except subprocess.TimeoutExpired:
            seen.problem = "the bot did not stop within 60 s of SIGTERM"
    seen.exit_code = bot.poll()


def _read_results(account: PaperTradingAccount, seen: Observations) -> None:
    from paper_trading.models import PaperAIThoughtLog, PaperTrade, PaperTradingSession
    from paper_trading.services.verification import verify_account

    session = PaperTradingSession.objects.filter(account=account).first()
    if session is None:
        seen.problem = seen.problem or "the bot never opened a session"
        return
    seen.final_status = session.status
    seen.final_reason = session.status_reason
    seen.total_ticks = session.total_ticks
    seen.trades = [
        TradeSeen(
            t.created_at.timestamp(),
            t.side,
            t.status,
            str(t.decision.market_data.get("price_usd", "")) if t.decision else "",
        )
        for t in PaperTrade.objects.filter(session=session)
        .select_related("decision")
        .order_by("created_at")
    ]
    thoughts = PaperAIThoughtLog.objects.filter(session=session).order_by("created_at")
    seen.priced_at = sorted(
        {
            t.timestamp()
            for t in thoughts.filter(token_symbol="WETH").values_list("created_at", flat=True)
        }
    )
    seen.feed_thoughts = [
        ThoughtSeen(t.created_at.timestamp(), t.decision_type, t.reasoning)
        for t in thoughts.filter(token_symbol="")
    ]
    seen.ledger_problems = verify_account(account).mismatches


def _log_errors(stderr: Path) -> list[str]:
    """ERROR and CRITICAL records of the bot's JSON log, and any traceback it printed."""
    found = []
    for line in stderr.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("level") in ("ERROR", "CRITICAL"):
            found.append(str(record.get("message", line))[:300])
        elif record is None and "Traceback" in line:
            found.append(line[:300])
    return found


# -- what it means ------------------------------------------------------------------------

#: Clock slack when comparing the bench's switch times with the bot's tick times.
SLACK_SECONDS = 0.1


@dataclass
class ModeFigures:
    switches: int = 0
    seconds: float = 0.0
    ticks: int = 0
    priced_ticks: int = 0
    #: Trades whose price this mode's segments served.
    trades: int = 0


@dataclass
class Recovery:
    at: float
    after: str
    #: Seconds from the feed turning healthy to the first trade on its price.
    trade_after: float | None


@dataclass
class Analysis:
    seconds: float
    ticks: int
    priced_ticks: int
    trades: int
    modes: dict[str, ModeFigures]
    stale_trades: list[str]
    crashes: list[str]
    errors_logged: list[str]
    outages: int
    unreported_outages: list[str]
    recoveries: list[Recovery]
    ledger_problems: list[str]
    resume_bound_seconds: float

    @property
    def longest_resume(self) -> float | None:
        waits = [r.trade_after for r in self.recoveries if r.trade_after is not None]
        return max(waits) if waits else None

    @property
    def missed_recoveries(self) -> list[Recovery]:
        return [r for r in self.recoveries if r.trade_after is None]

    def targets(self) -> list[tuple[str, str, str, str]]:
        def verdict(ok: bool) -> str:
            return "pass" if ok else "FAIL"

        longest = self.longest_resume
        resumed = len(self.recoveries) - len(self.missed_recoveries)
        reported = self.outages - len(self.unreported_outages)
        return [
            (
                "trades on stale or unserved prices",
                str(len(self.stale_trades)),
                "0",
                verdict(not self.stale_trades),
            ),
            ("crashes", str(len(self.crashes)), "0", verdict(not self.crashes)),
            ("errors logged", str(len(self.errors_logged)), "0", verdict(not self.errors_logged)),
            (
                "outages reported and closed",
                f"{reported}/{self.outages}",
                "all",
                verdict(not self.unreported_outages),
            ),
            (
                "recoveries that traded again",
                f"{resumed}/{len(self.recoveries)}",
                "all",
                verdict(bool(self.recoveries) and not self.missed_recoveries),
            ),
            (
                "longest time to resume trading",
                "-" if longest is None else f"{longest:.1f} s",
                f"<= {self.resume_bound_seconds:.1f} s",
                verdict(longest is not None and longest <= self.resume_bound_seconds),
            ),
            (
                "stored books reconcile",
                "yes" if not self.ledger_problems else "no",
                "yes",
                verdict(not self.ledger_problems),
            ),
        ]

    @property
    def failed(self) -> bool:
        return any(t[3] == "FAIL" for t in self.targets())


def analyse(seen: Observations) -> Analysis:
    """Figures and failures from what the run recorded (pure: tests feed it made-up runs)."""
    timing = seen.timing
    segments = seen.segments
    origin = segments[0].start

    def when(at: float) -> str:
        return f"t+{at - origin:.1f} s"

    def segment_at(at: float) -> Segment | None:
        return next((s for s in segments if s.start <= at < s.end), None)

    by_price = {Decimal(s.weth_usd): s for s in segments}
    priced = set(seen.priced_at)

    modes: dict[str, ModeFigures] = {m: ModeFigures() for m in (HEALTHY, *FAULTS)}
    for index, segment in enumerate(segments):
        figures = modes[segment.mode]
        figures.switches += index > 0
        figures.seconds += segment.end - segment.start
    for tick in seen.ticks:
        inside = segment_at(tick.at)
        if inside is not None:
            modes[inside.mode].ticks += 1
    for at in seen.priced_at:
        inside = segment_at(at)
        if inside is not None:
            modes[inside.mode].priced_ticks += 1

    stale: list[str] = []
    for trade in seen.trades:
        what = f"{trade.side} at {when(trade.at)} on ${trade.quote_usd or '?'}"
        source = by_price.get(Decimal(trade.quote_usd)) if trade.quote_usd else None
        if source is None:
            stale.append(f"{what}: a price the fake never served")
            continue
        modes[source.mode].trades += 1
        if source.mode != HEALTHY:
            stale.append(f"{what}: served while {source.mode} ({source.detail})")
        elif not (
            source.start - timing.tick_seconds
            <= trade.at
            <= source.end + timing.cache_ttl_seconds + SLACK_SECONDS
        ):
            stale.append(
                f"{what}: served fresh until {when(source.end)}, "
                f"{trade.at - source.end:.1f} s before the trade"
            )

    crashes: list[str] = []
    if seen.problem:
        crashes.append(seen.problem)
    if seen.died_at is not None:
        crashes.append(
            f"the bot exited at {when(seen.died_at)} (exit code {seen.exit_code}) "
            "before it was asked to stop"
        )
    elif seen.exit_code != 0:
        crashes.append(f"the bot exited with code {seen.exit_code} when asked to stop")
    if seen.final_status != "STOPPED":
        crashes.append(f"the session ended {seen.final_status or 'unknown'}: {seen.final_reason}")

    outages, unreported = _outages(seen, when)
    recoveries = [
        _recovery(seen, previous, segment)
        for previous, segment in pairwise(segments)
        if segment.mode == HEALTHY and previous.mode != HEALTHY
    ]
    return Analysis(
        seconds=segments[-1].end - origin,
        ticks=seen.total_ticks,
        priced_ticks=len(priced),
        trades=len(seen.trades),
        modes=modes,
        stale_trades=stale,
        crashes=crashes,
        errors_logged=seen.log_errors,
        outages=outages,
        unreported_outages=unreported,
        recoveries=recoveries,
        ledger_problems=seen.ledger_problems,
        resume_bound_seconds=timing.resume_bound_seconds,
    )


def _outages(seen: Observations, when: Callable[[float], str]) -> tuple[int, list[str]]:
    """Runs of ticks without prices: each must be announced (a BLOCKED thought, the session
    PAUSED with a reason) and, once prices return, closed by a "price feed back" thought."""
    priced = set(seen.priced_at)
    ticks = {t.at: t for t in seen.ticks}
    for at in priced:
        ticks.setdefault(at, TickSeen(0, at, "", ""))
    timeline = sorted(ticks.values(), key=lambda t: t.at)
    blocked = [t.at for t in seen.feed_thoughts if t.decision == "BLOCKED"]
    back = {t.at for t in seen.feed_thoughts if t.reasoning.startswith("price feed back after")}
    count = 0
    problems: list[str] = []
    index = 0
    while index < len(timeline):
        if timeline[index].at in priced:
            index += 1
            continue
        first = index
        while index < len(timeline) and timeline[index].at not in priced:
            index += 1
        run = timeline[first:index]
        count += 1
        before = timeline[first - 1].at if first else float("-inf")
        label = f"outage at {when(run[0].at)} ({len(run)} ticks)"
        if not any(before < at <= run[-1].at for at in blocked):
            problems.append(f"{label}: no BLOCKED thought")
        for tick in run:
            if tick.status != "PAUSED" or not tick.reason:
                problems.append(f"{label}: tick {tick.number} shows {tick.status!r}, not PAUSED")
                break
        if index < len(timeline) and timeline[index].at not in back:
            problems.append(f"{label}: no 'price feed back' thought when prices returned")
    return count, problems


def _recovery(seen: Observations, fault: Segment, healthy: Segment) -> Recovery:
    """How long after `fault` ended the bot traded on the healthy segment's price.

    A tick that began just before the switch may fetch just after it: that counts as at once.
    """
    price = Decimal(healthy.weth_usd)
    traded = [t.at for t in seen.trades if t.quote_usd and Decimal(t.quote_usd) == price]
    wait = max(0.0, min(traded) - healthy.start) if traded else None
    return Recovery(at=healthy.start, after=fault.mode, trade_after=wait)


# -- the report ---------------------------------------------------------------------------


def report(seen: Observations, result: Analysis, kinds: Sequence[str]) -> list[str]:
    origin = seen.segments[0].start
    faults = sum(result.modes[m].switches for m in FAULTS)
    lines = [
        f"Live bot (run_paper_bot --prices live, 1 s ticks) through {faults} price-feed faults "
        f"in {result.seconds / 60:.1f} min, seed {seen.seed}: {result.ticks} ticks, "
        f"{result.priced_ticks} with prices, {result.trades} trades",
        "",
    ]
    header = ("mode", "switches", "seconds", "ticks seen", "with prices", "trades on its prices")
    rows = [
        (
            mode,
            str(f.switches),
            f"{f.seconds:.0f}",
            str(f.ticks),
            str(f.priced_ticks),
            str(f.trades),
        )
        for mode, f in result.modes.items()
        if mode == HEALTHY or mode in kinds
    ]
    lines += text_table(header, rows)
    waits = sorted(r.trade_after for r in result.recoveries if r.trade_after is not None)
    if waits:
        lines += [
            "",
            f"{len(result.recoveries)} recoveries: trading resumed after a median "
            f"{waits[len(waits) // 2]:.1f} s, at most {waits[-1]:.1f} s "
            f"(bound {result.resume_bound_seconds:.1f} s)",
        ]
    lines += ["", *text_table(TARGET_HEADER, result.targets())]
    details = [
        *result.stale_trades,
        *result.crashes,
        *result.errors_logged,
        *result.unreported_outages,
        *(
            f"no trade after the {r.after} fault ended at t+{r.at - origin:.1f} s"
            for r in result.missed_recoveries
        ),
        *result.ledger_problems,
    ]
    if details:
        lines += ["", "Failures:", *(f"  {d}" for d in details[:40])]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the fault plan")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run (default: random)")
    parser.add_argument(
        "--modes",
        default=",".join(FAULTS),
        help=f"faults to play, comma-separated (default: all of {', '.join(FAULTS)})",
    )
    parser.add_argument(
        "--bot-max-age",
        type=float,
        default=None,
        help="the staleness limit given to the bot, in seconds (default: the bench's 60); "
        "set it above 3 hours to watch the bench catch a bot that trades on stale prices",
    )
    results_file.add_results_option(parser)
    args = parser.parse_args()
    kinds = [k.strip() for k in args.modes.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(FAULTS))
    if unknown or not kinds:
        parser.error(
            f"--modes: unknown {', '.join(unknown) or 'empty'}; known: {', '.join(FAULTS)}"
        )
    seed = args.seed if args.seed is not None else random.randrange(1_000_000)
    timing = Timing()
    seen = run(args.minutes * 60, seed, kinds, timing, args.bot_max_age)
    result = analyse(seen)
    print("\n".join(report(seen, result, kinds)))

    origin = seen.segments[0].start
    document = {
        "created_at": results_file.stamp(),
        "machine": results_file.machine(),
        "command": "python -m bench.feed_faults " + " ".join(sys.argv[1:]),
        "seed": seed,
        "modes": kinds,
        "bot_max_age_seconds": args.bot_max_age or timing.max_age_seconds,
        "timing": asdict(timing) | {"resume_bound_seconds": timing.resume_bound_seconds},
        "figures": {
            "seconds": result.seconds,
            "ticks": result.ticks,
            "priced_ticks": result.priced_ticks,
            "trades": result.trades,
            "modes": {m: asdict(f) for m, f in result.modes.items()},
            "stale_trades": result.stale_trades,
            "crashes": result.crashes,
            "errors_logged": result.errors_logged,
            "outages": result.outages,
            "unreported_outages": result.unreported_outages,
            "recoveries": [
                {"at": round(r.at - origin, 3), "after": r.after, "trade_after": r.trade_after}
                for r in result.recoveries
            ],
            "longest_resume_seconds": result.longest_resume,
            "ledger_problems": result.ledger_problems,
        },
        "targets": [dict(zip(TARGET_HEADER, t, strict=True)) for t in result.targets()],
        "segments": [
            asdict(s)
            | {
                "start": round(s.start - origin, 3),
                "end": round(s.end - origin, 3),
                "detail": s.detail,
            }
            for s in seen.segments
        ],
    }
    print(f"\nSaved {results_file.save(document, 'feed-faults', args.results)}")
    if result.failed:
        print(f"The bot's database and logs are kept in {seen.workdir}")
        return 1
    shutil.rmtree(seen.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
