"""Reconcile every account's books; exit non-zero naming any mismatch."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from paper_trading.models import PaperTradingAccount
from paper_trading.services.verification import verify_account


class Command(BaseCommand):
    help = (
        "Check that cash + open positions at cost = initial balance + realized P&L - fees - gas, "
        "that positions match the trade history, and that session counters match the rows."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check-all", action="store_true", help="verify every account")
        parser.add_argument("--account", help="verify one account (name or id)")

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = PaperTradingAccount.objects.all()
        if options["account"]:
            ref = options["account"]
            accounts = accounts.filter(name=ref) if len(ref) != 36 else accounts.filter(pk=ref)
        elif not options["check_all"]:
            raise CommandError("say which accounts: --check-all or --account NAME")
        failures = 0
        checked = 0
        for account in accounts:
            checked += 1
            report = verify_account(account)
            if report.ok:
                self.stdout.write(f"OK   {account.name} ({account.account_id})")
                continue
            failures += 1
            self.stdout.write(f"FAIL {account.name} ({account.account_id})")
            for mismatch in report.mismatches:
                self.stdout.write(f"     - {mismatch}")
        if failures:
            raise CommandError(f"{failures} of {checked} accounts do not reconcile")
        self.stdout.write(f"{checked} accounts reconcile")
