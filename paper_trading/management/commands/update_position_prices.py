"""Revalue every open live position from one bulk price fetch (Celery runs it every 60 s)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from paper_trading.services.prices import update_all_position_prices


class Command(BaseCommand):
    help = "Revalue open positions of live sessions with current prices; errors per position."

    def handle(self, *args: Any, **options: Any) -> None:
        report = update_all_position_prices()
        if report.problem:
            raise CommandError(f"no prices, nothing revalued: {report.problem}")
        self.stdout.write(f"revalued {report.updated} positions")
        for failure in report.failed:
            self.stdout.write(f"  failed: {failure}")
