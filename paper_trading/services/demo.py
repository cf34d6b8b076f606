"""The local demo user and account that `make run` and a bare `run_paper_bot` use."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from paper_trading.models import PaperTradingAccount
from paper_trading.services.accounts import create_account

DEMO_USERNAME = "demo"
DEMO_ACCOUNT = "Demo"


def ensure_demo_user() -> tuple[User, str | None]:
    """The demo user, and its new password if it was just created (shown once)."""
    user_model = get_user_model()
    user = user_model.objects.filter(username=DEMO_USERNAME).first()
    if user is not None:
        return user, None
    password = secrets.token_urlsafe(9)
    user = user_model.objects.create_superuser(DEMO_USERNAME, "demo@localhost", password)
    return user, password


def get_or_create_account(user: User, name: str) -> PaperTradingAccount:
    account = PaperTradingAccount.objects.filter(user=user, name=name).first()
    return account or create_account(user, name)
