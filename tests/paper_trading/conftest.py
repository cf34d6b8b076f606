"""Fixtures for tests that drive the Django app."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from paper_trading.models import PaperTradingAccount
from paper_trading.services.accounts import create_account


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_user("alice", "alice@example.com", "correct-horse-battery")


@pytest.fixture
def account(user: User) -> PaperTradingAccount:
    return create_account(user, "Main")
