"""Reconcile every account's books; exit non-zero naming any mismatch."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from paper_trading.models import PaperTradingAccount
from paper_trading.services.verification import AccountReport, verify_account


class Command(BaseCommand):
    help = (
        "Check that cash + open positions at cost = initial balance + realized P&L - fees - gas, "
        "that positions match the trade history, that no trade is written twice, that session "
        "counters match the rows, and that no session is left RUNNING by a bot that is gone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--check-all", action="store_true", help="verify every account")
        parser.add_argument("--account", help="verify one account (name or id)")
        parser.add_argument(
            "--json",
            action="store_true",
            help="print one JSON document (per account and in total) instead of lines",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = PaperTradingAccount.objects.all()
        if options["account"]:
            ref = options["account"]
            accounts = accounts.filter(name=ref) if len(ref) != 36 else accounts.filter(pk=ref)
        elif not options["check_all"]:
            raise CommandError("say which accounts: --check-all or --account NAME")
        reports = [verify_account(account) for account in accounts]
        if options["json"]:
            self.stdout.write(json.dumps(_document(reports), indent=2))
        else:
            for report in reports:
                account, verdict = report.account, "OK  " if report.ok else "FAIL"
                self.stdout.write(f"{verdict} {account.name} ({account.pk})")
                for mismatch in report.mismatches:
                    self.stdout.write(f"     - {mismatch}")
        failures = sum(not r.ok for r in reports)
        if failures:
            raise CommandError(f"{failures} of {len(reports)} accounts do not reconcile")
        if not options["json"]:
            self.stdout.write(f"{len(reports)} accounts reconcile")


def _document(reports: list[AccountReport]) -> dict[str, Any]:
    """What --json prints: the totals a script checks, then each account's findings."""
    return {
        "accounts_checked": len(reports),
        "accounts_failed": sum(not r.ok for r in reports),
        "mismatches": sum(len(r.mismatches) for r in reports),
        "duplicate_trades": sum(r.duplicate_trades for r in reports),
        "sessions_left_running": sum(len(r.sessions_left_running) for r in reports),
        "accounts": [
            {
                "account_id": str(r.account.pk),
                "name": r.account.name,
                "ok": r.ok,
                "mismatches": r.mismatches,
                "duplicate_trades": r.duplicate_trades,
                "sessions_left_running": r.sessions_left_running,
            }
            for r in reports
        ],
    }
