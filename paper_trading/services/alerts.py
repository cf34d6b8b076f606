"""Alerts to an operator's webhook and Telegram chat: a tripped breaker, a feed outage (and its
recovery) and a failed session.

The alerts are the websocket's `alert` messages (same builders, same wording), so the dashboard,
the socket and the operator's phone say the same thing. Delivery never runs on a tick's path: a
per-process daemon thread drains a bounded queue (full: the alert is dropped with a warning),
posts with a short timeout and retries 5xx and connection errors a few times with a small
backoff. Failures are logged as warnings without the webhook URL or bot token, and never reach
the bot. With no `ALERT_WEBHOOK_URL` and no Telegram bot, nothing here does any work.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings

from paper_trading.engine.events import EventSink, PriceFeedChanged, TickResult
from paper_trading.models import PaperTradingSession

if TYPE_CHECKING:
    from paper_trading.realtime.messages import Message

logger = logging.getLogger("paper_trading.alerts")

#: The alert kind of a feed that came back after an outage (a resolved notice).
PRICE_FEED_RECOVERED = "price_feed_recovered"
#: Alerts waiting to be sent; more are dropped (with a warning) rather than held in memory.
QUEUE_SIZE = 100
#: Pauses before the second and third attempt at one delivery.
BACKOFF_SECONDS = (0.2, 0.5)
#: Longest the process waits at exit for queued alerts (a crashed bot's last words).
EXIT_DRAIN_SECONDS = 5.0

Payload = dict[str, Any]


@dataclass(frozen=True)
class AlertTargets:
    """Where alerts go; read from settings (env vars) each time a sink is built."""

    webhook_url: str = ""
    telegram_bot_token: str = ""
    telegram_chat_id: str = ""
    telegram_api_url: str = "https://api.telegram.org"
    timeout_seconds: float = 3.0

    @classmethod
    def from_settings(cls) -> AlertTargets:
        return cls(
            webhook_url=settings.ALERT_WEBHOOK_URL,
            telegram_bot_token=settings.TELEGRAM_BOT_TOKEN,
            telegram_chat_id=settings.TELEGRAM_CHAT_ID,
            telegram_api_url=settings.TELEGRAM_API_URL,
            timeout_seconds=settings.ALERT_TIMEOUT_SECONDS,
        )

    @property
    def telegram(self) -> bool:
        return bool(self.telegram_bot_token and self.telegram_chat_id)

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url) or self.telegram


def payload(message: Message) -> Payload:
    """The webhook's JSON: the `alert` message's data plus `at`, when it was raised."""
    return {**message["data"], "at": message["timestamp"]}


def telegram_text(alert: Payload) -> str:
    return (
        f"[{str(alert['severity']).upper()}] {alert['message']}\n"
        f"{alert['kind']} · account {alert['account']} · session {alert['session']}"
    )


class AlertDispatcher:
    """Sends alerts from a daemon thread, so a slow or dead receiver never holds up a bot."""

    def __init__(
        self,
        targets: AlertTargets,
        *,
        queue_size: int = QUEUE_SIZE,
        backoff: Sequence[float] = BACKOFF_SECONDS,
    ) -> None:
        self.targets = targets
        self.backoff = tuple(backoff)
        self._queue: queue.Queue[Payload] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, alert: Payload) -> bool:
        """Queue an alert; False (logged) if the queue is full. Never blocks, never raises."""
        self._start()
        try:
            self._queue.put_nowait(alert)
        except queue.Full:
            logger.warning("alerts: queue full, dropped a %s alert", alert.get("kind"))
            return False
        return True

    def drain(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the queued alerts to be sent (or given up on)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._work, name="alerts", daemon=True)
            self._thread.start()
            atexit.register(self.drain, EXIT_DRAIN_SECONDS)

    def _work(self) -> None:
        with httpx.Client(timeout=self.targets.timeout_seconds) as client:
            while True:
                alert = self._queue.get()
                try:
                    self._deliver(client, alert)
                except Exception:  # a bug here must not kill the thread for later alerts
                    logger.warning("alerts: could not deliver a %s alert", alert.get("kind"))
                finally:
                    self._queue.task_done()

    def _deliver(self, client: httpx.Client, alert: Payload) -> None:
        t = self.targets
        if t.webhook_url:
            self._post(client, "webhook", t.webhook_url, alert, alert["kind"])
        if t.telegram:
            url = f"{t.telegram_api_url.rstrip('/')}/bot{t.telegram_bot_token}/sendMessage"
            body = {"chat_id": t.telegram_chat_id, "text": telegram_text(alert)}
            self._post(client, "telegram", url, body, alert["kind"])

    def _post(self, client: httpx.Client, target: str, url: str, body: Payload, kind: str) -> bool:
        """POST with retries on 5xx, 429 and connection errors. Logs name the target, never
        the URL: it holds the bot token, and a webhook's query often holds a secret too."""
        problem = ""
        for attempt in range(len(self.backoff) + 1):
            if attempt:
                time.sleep(self.backoff[attempt - 1])
            try:
                response = client.post(url, json=body)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
                continue
            if response.is_success:
                return True
            problem = f"HTTP {response.status_code}"
            if response.status_code < 500 and response.status_code != 429:
                break
        logger.warning("alerts: %s did not take a %s alert (%s)", target, kind, problem)
        return False


_dispatchers: dict[AlertTargets, AlertDispatcher] = {}
_dispatchers_lock = threading.Lock()


def dispatcher(targets: AlertTargets | None = None) -> AlertDispatcher | None:
    """The process's dispatcher for these targets (default: settings); None if none are set."""
    targets = targets or AlertTargets.from_settings()
    if not targets.configured:
        return None
    with _dispatchers_lock:
        if targets not in _dispatchers:
            _dispatchers[targets] = AlertDispatcher(targets)
        return _dispatchers[targets]


class AlertSink(EventSink):
    """Alerts once per breaker trip (until it clears) and once per outage (until recovery)."""

    def __init__(
        self, account_id: uuid.UUID, session_id: uuid.UUID, dispatcher: AlertDispatcher
    ) -> None:
        self.account_id = account_id
        self.session_id = session_id
        self.dispatcher = dispatcher
        self._tripped: set[str] = set()
        #: None until the sink sees the feed: a restart mid-outage still reports the recovery.
        self._feed_down: bool | None = None

    def publish(self, result: TickResult) -> None:
        try:
            for alert in self._alerts(result):
                self.dispatcher.submit(payload(alert))
        except Exception:
            logger.warning("alerts: could not build the alerts of tick %s", result.tick_number)

    def _alerts(self, result: TickResult) -> list[Message]:
        changes = result.of_type(PriceFeedChanged)
        tripped, self._tripped = self._tripped, set(result.counters.tripped)
        if not changes and self._tripped <= tripped:
            return []  # the usual tick: nothing new to say
        from paper_trading.realtime import messages as m  # the REST serializers: not every tick

        out: list[Message] = []
        a, s = self.account_id, self.session_id
        for message in m.tick_messages(result, account_id=a, session_id=s):
            data = message["data"]
            if message["type"] != m.ALERT:
                continue
            if data["kind"] == m.BREAKER_TRIPPED and data["code"] in tripped:
                continue
            if data["kind"] == m.PRICE_FEED_DOWN:
                if self._feed_down:
                    continue
                self._feed_down = True
            out.append(message)
        if any(not c.problem for c in changes) and self._feed_down is not False:
            self._feed_down = False
            out.append(
                m.alert_message(
                    PRICE_FEED_RECOVERED,
                    "price feed recovered: trading resumes",
                    account_id=a,
                    session_id=s,
                    severity=m.INFO,
                    tick_number=result.tick_number,
                    market_time=result.timestamp,
                )
            )
        return out


def alert_sinks(account_id: uuid.UUID, session_id: uuid.UUID) -> list[AlertSink]:
    """The alert sink for a bot's loop, or none at all when no target is configured."""
    sender = dispatcher()
    return [AlertSink(account_id, session_id, sender)] if sender is not None else []


def alert_if_failed(session: PaperTradingSession) -> None:
    """Alert a session that ended FAILED (pass it as saved). Never raises."""
    try:
        if session.status != PaperTradingSession.Status.FAILED:
            return
        sender = dispatcher()
        if sender is None:
            return
        from paper_trading.realtime import messages as m  # the REST serializers: only to send

        ended = m.session_end_alert(session)
        if ended is not None:
            sender.submit(payload(ended))
    except Exception:
        logger.warning("alerts: could not alert failed session %s", session.pk)
