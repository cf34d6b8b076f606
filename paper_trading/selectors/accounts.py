"""Which account a request is about: always one the user owns, else 404."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import User
from django.http import Http404

from paper_trading.models import PaperTradingAccount


def user_accounts(user: User) -> list[PaperTradingAccount]:
    return list(PaperTradingAccount.objects.filter(user=user).order_by("created_at"))


def account_for(user: User, account_id: str | None) -> PaperTradingAccount:
    """The named account if it is the user's; without a name, the user's first active one.

    Someone else's account is indistinguishable from a missing one (404), so ids leak nothing.
    """
    queryset = PaperTradingAccount.objects.filter(user=user)
    if account_id:
        try:
            key = uuid.UUID(str(account_id))
        except ValueError:
            raise Http404(f"no account {account_id!r}") from None
        account = queryset.filter(pk=key).first()
        if account is None:
            raise Http404(f"no account {account_id}")
        return account
    account = queryset.filter(is_active=True).order_by("created_at").first()
    if account is None:
        raise Http404("you have no paper trading account yet: create one with POST accounts/")
    return account
