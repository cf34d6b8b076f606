"""`make run`: the whole product in one process: the ASGI server (HTTP + WebSocket), one bot,
and the periodic jobs. With REDIS_URL set, bots and jobs go to a Celery worker it starts too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from paper_trading.engine.chains import get_chain
from paper_trading.models import PaperTradingAccount
from paper_trading.services.accounts import reset_account
from paper_trading.services.bot import (
    BotAlreadyRunningError,
    BotSettings,
    PositionsOnAnotherChainError,
    ReplayExhaustedError,
    resumable_price_source,
)
from paper_trading.services.bot_control import start_bot, stop_all_threads
from paper_trading.services.demo import DEMO_ACCOUNT, ensure_demo_user, get_or_create_account
from paper_trading.services.embedded import EmbeddedScheduler
from paper_trading.services.prices import SourceChoice, choose_price_source


class Command(BaseCommand):
    help = "Start the web server (HTTP + WebSocket), a paper bot and the periodic jobs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--speed", default="7200", help="replay clock multiplier (7200: two hours per second)"
        )
        parser.add_argument("--intel", type=int, default=5)
        parser.add_argument("--chain", default="base")
        parser.add_argument(
            "--prices", default="auto", choices=["auto", "live", "replay"], help="price source"
        )
        parser.add_argument("--no-bot", action="store_true", help="serve only; start bots later")

    def handle(self, *args: Any, **options: Any) -> None:
        user, password = ensure_demo_user()
        credentials = Path(settings.DEMO_CREDENTIALS_FILE)
        if password is not None:
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.write_text(f"username: {user.username}\npassword: {password}\n")
            credentials.chmod(0o600)
        account = get_or_create_account(user, DEMO_ACCOUNT)
        choice = choose_price_source(resumable_price_source(account) or options["prices"])
        port = options["port"]
        self._banner(f"http://127.0.0.1:{port}", user.username, password, credentials, choice)

        worker: subprocess.Popen[bytes] | None = None
        scheduler: EmbeddedScheduler | None = None
        if settings.BACKGROUND_MODE == "celery":
            worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "dexproject",
                    "worker",
                    "--beat",
                    "-Q",
                    f"{settings.CELERY_TASK_DEFAULT_QUEUE},{settings.CELERY_JOBS_QUEUE}",
                    "--loglevel",
                    "warning",
                ],
                cwd=settings.BASE_DIR,
            )
        else:
            scheduler = EmbeddedScheduler()
            scheduler.start()
        server = uvicorn.Server(
            uvicorn.Config(
                "dexproject.asgi:application",
                host="127.0.0.1",
                port=port,
                log_level="warning",
                lifespan="off",
                # Live updates go out uncompressed: deflating each tick per socket is the
                # fan-out's largest cost, for frames of a few kB.
                ws_per_message_deflate=False,
            )
        )
        if not options["no_bot"]:
            threading.Thread(
                target=self._start_bot_when_up, args=(server, account, options, choice), daemon=True
            ).start()
        # uvicorn handles Ctrl+C / SIGTERM while serving, then re-sends the signal to the handler
        # that was there before it: make that one harmless so the shutdown below always runs.
        for handled in (signal.SIGINT, signal.SIGTERM):
            signal.signal(handled, lambda signum, frame: None)
        try:
            server.run()
        finally:
            self.stdout.write("Stopping: bots finish their current tick...")
            stop_all_threads("the server stopped")
            if scheduler is not None:
                scheduler.stop()
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            self.stdout.write("Stopped the web server and the bot.")

    def _start_bot_when_up(
        self,
        server: uvicorn.Server,
        account: PaperTradingAccount,
        options: dict[str, Any],
        choice: SourceChoice,
    ) -> None:
        while not server.started and not server.should_exit:
            threading.Event().wait(0.1)
        if not server.started:
            return
        bot_settings = BotSettings(
            intel_level=options["intel"],
            chain_id=get_chain(options["chain"]).chain_id,
            prices=choice.source,
            price_note=choice.note,
            speed=Decimal(options["speed"]),
            session_name="make run",
        )
        try:
            session = start_bot(account, bot_settings)
        except ReplayExhaustedError:
            self.stdout.write("The demo account has replayed all recorded prices: resetting it.")
            reset_account(account)
            session = start_bot(account, bot_settings)
        except (BotAlreadyRunningError, PositionsOnAnotherChainError) as exc:
            self.stdout.write(f"Not starting a bot: {exc}")
            return
        self.stdout.write(f"Bot started: session {session.session_id} ({session.price_source}).")

    def _banner(
        self, url: str, username: str, password: str | None, credentials: Path, choice: SourceChoice
    ) -> None:
        w = self.stdout.write
        w("")
        w(f"dexpaper is running on this machine ({settings.BACKGROUND_MODE} mode).")
        w(f"  Dashboard: {url}/paper-trading/")
        w(f"  Admin (every row): {url}/admin/")
        w(f"  API and its docs: {url}/paper-trading/api/  {url}/api/docs/")
        if password:
            w(f"  Sign in as '{username}' with password: {password}")
            w(f"  (saved in {credentials})")
        else:
            w(f"  Sign in as '{username}'; the password is in {credentials}")
            w("  (or set a new one: .venv/bin/python manage.py changepassword demo)")
        w(f"  {choice.note}")
        w("  Ctrl+C stops the bot after its current tick, then the server.")
        w("")
