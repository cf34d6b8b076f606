"""Download price history from CoinGecko into replay files, to replay any period you choose."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from paper_trading.engine.chains import get_chain
from paper_trading.engine.prices.coingecko import CoinGeckoClient, CoinGeckoConfig
from paper_trading.engine.prices.feed import PriceUnavailableError
from paper_trading.engine.prices.history_files import interval_for_days, write_candles


class Command(BaseCommand):
    help = (
        "Fetch /coins/{id}/market_chart for tokens and write <SYMBOL>_USDT-<interval>.csv.gz "
        "files that run_paper_bot --data replays."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--token", action="append", required=True, help="e.g. WETH; repeat")
        parser.add_argument("--days", type=int, default=90, help="1 (5-minutely) to 365")
        parser.add_argument("--chain", default="ethereum", help="registry to look tokens up in")
        parser.add_argument(
            "--output",
            default=str(Path(settings.BASE_DIR) / "data" / "history"),
            help="folder for the files",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"]
        if not 1 <= days <= 365:
            raise CommandError("--days must be between 1 and 365")
        chain = get_chain(options["chain"])
        try:
            tokens = [chain.token(symbol) for symbol in options["token"]]
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        client = CoinGeckoClient(CoinGeckoConfig.from_env(os.environ))
        output = Path(options["output"])
        interval = interval_for_days(days)
        for token in tqdm(tokens, desc="tokens", unit="token", disable=len(tokens) < 2):
            try:
                points = async_to_sync(client.market_chart)(token.coingecko_id, days)
            except PriceUnavailableError as exc:
                raise CommandError(f"{token.symbol}: {exc}") from None
            path = write_candles(output, token.price_symbol, interval, points)
            self.stdout.write(f"{token.symbol}: {len(points)} prices -> {path}")
        self.stdout.write(
            f"Replay them with: manage.py run_paper_bot --prices replay --data {output} "
            f"--bar {interval}"
        )
