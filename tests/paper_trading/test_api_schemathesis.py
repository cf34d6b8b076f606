"""Property-based API tests: every operation of the OpenAPI schema, fuzzed by schemathesis.

The caller is a real user with a real API token (`Authorization: Token <key>`), owning an
account the replay bot filled (trades, open positions, thoughts, metrics). Every response must
be free of 5xx and conform to the schema: documented status code, content type, body schema.

Bot start: while fuzzing, the account already has a RUNNING session owned by this process, so a
valid `POST bot/start/` is validated in full (body, strategy_config, price choice) and then
answered 409 ("already running"): no bot thread races the test transaction on the in-memory test
database. `test_bot_start_runs_a_real_bot` covers the 201 path with a real bot thread, validates
that response against the schema, and stops the bot (stop_bot + wait_for) before it ends.

SCHEMATHESIS_MAX_EXAMPLES sets the examples per operation (default 25, the CI size);
`python -m bench.abuse` runs 500 and sets SCHEMATHESIS_REPORT to a file that gets every
operation's count of answers per status code.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from paper_trading.models import (
    PaperAIThoughtLog,
    PaperPerformanceMetrics,
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    PaperTradingSession,
)
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from paper_trading.services.bot import ACTIVE_STATUSES
from paper_trading.services.bot_control import NoBotRunningError, stop_bot, wait_for
from tests.paper_trading import sweep

USERNAME = "schemathesis"
ACCOUNT = "Schemathesis"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]

#: Sent as both the csrftoken cookie and the X-CSRFToken header (an unmasked secret).
CSRF_SECRET = "abusefuzzabusefuzzabusefuzz12345"
#: Examples per operation: small in CI, large for `python -m bench.abuse`.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "25"))
#: Answers seen, per operation and status code (written to SCHEMATHESIS_REPORT, if set).
ANSWERS: defaultdict[str, Counter[int]] = defaultdict(Counter)

application = WSGIHandler()
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@dataclass(frozen=True)
class Caller:
    user_id: int
    account_id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        # The CSRF pair lets the sign-in operations (CSRF-protected for every caller) reach
        # their own validation instead of answering every example 403.
        return {"Authorization": f"Token {self.key}", "X-CSRFToken": CSRF_SECRET}


@pytest.fixture(scope="module")
def caller(django_db_setup: None, django_db_blocker: Any) -> Iterator[Caller]:
    """A user, its API token and an account the replay bot filled; shared by the module."""
    with django_db_blocker.unblock():
        user = User.objects.create_user(USERNAME, "fuzz@example.com", "correct-horse-battery")
        account = create_account(user, ACCOUNT)
        call_command(
            "run_paper_bot",
            "--account",
            ACCOUNT,
            "--prices",
            "replay",
            "--max-ticks",
            "180",  # leaves positions open (200 would have closed them all)
            "--intel",
            "9",
            verbosity=0,
        )
        _, key = create_api_token(user, "schemathesis")
    yield Caller(user.pk, account.account_id, key)
    with django_db_blocker.unblock():
        _stop_bots(PaperTradingAccount.objects.filter(user_id=user.pk))
        User.objects.filter(pk=user.pk).delete()


def _stop_bots(accounts: Any) -> None:
    """Stop every bot on the accounts and wait for its thread to finish."""
    for account in accounts:
        try:
            session = stop_bot(account, "test teardown")
        except NoBotRunningError:
            continue
        assert wait_for(session.session_id, timeout=60), "the bot did not stop in time"


@pytest.fixture(scope="module", autouse=True)
def answers_report() -> Iterator[None]:
    """After the module, write the answers per operation and status where bench.abuse asks."""
    yield
    target = os.environ.get("SCHEMATHESIS_REPORT")
    if target:
        report = {
            "max_examples": MAX_EXAMPLES,
            "operations": {
                label: {str(code): n for code, n in sorted(codes.items())}
                for label, codes in sorted(ANSWERS.items())
            },
        }
        Path(target).write_text(json.dumps(report, indent=2) + "\n")


@pytest.fixture
def wsgi_calls() -> Iterator[None]:
    """Keep Django from closing the test's connection after each request (as its test client
    does)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def fuzz_state(caller: Caller, db: None, wsgi_calls: None) -> Iterator[Caller]:
    """The populated account, with a bot "running" in this process so starts answer 409."""
    account = PaperTradingAccount.objects.get(pk=caller.account_id)
    assert PaperTrade.objects.filter(account=account).exists()
    assert PaperPosition.objects.filter(account=account, is_open=True).exists()
    assert PaperAIThoughtLog.objects.filter(account=account).exists()
    assert PaperPerformanceMetrics.objects.filter(account=account).exists()
    sweep.pretend_bot_runs(account)
    yield caller
    # Nothing can have started a thread (start answers 409), but make sure of it.
    assert not PaperTradingSession.objects.filter(
        account__user_id=caller.user_id, status__in=ACTIVE_STATUSES, worker_pid=None
    ).exists()


_aimed = itertools.count()


def _aim_at_own_account(case: schemathesis.Case[Any], account_id: uuid.UUID) -> None:
    """Point two of every three generated account ids at the caller's populated account.

    Random UUIDs only ever reach the 404 branch; the real id exercises the data. Invalid values
    (negative cases) are left alone, and every third valid one stays a stranger's (a 404).
    """

    def aim(container: Any, key: str) -> None:
        if not isinstance(container, dict) or not isinstance(container.get(key), str):
            return
        try:
            uuid.UUID(container[key])
        except ValueError:
            return
        if next(_aimed) % 3:
            container[key] = str(account_id)

    aim(case.query, "account")
    aim(case.path_parameters, "account_id")
    aim(case.body, "account")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_conforms_to_its_schema(case: schemathesis.Case[Any], fuzz_state: Caller) -> None:
    _aim_at_own_account(case, fuzz_state.account_id)
    cache.clear()  # throttle counters: a few hundred calls per operation would all be 429s
    response = case.call(headers=fuzz_state.headers, cookies={"csrftoken": CSRF_SECRET})
    ANSWERS[case.operation.label][response.status_code] += 1
    case.validate_response(response, checks=CHECKS, headers=fuzz_state.headers)


@pytest.mark.django_db(transaction=True)
def test_bot_start_runs_a_real_bot(wsgi_calls: None) -> None:
    """The 201 path the fuzzing above blocks: a real bot thread, started and stopped by the API.

    Committed rows (transaction=True), so the bot thread sees the session it runs; the bot is
    stopped and waited for before the test ends, whatever happens.
    """
    user = User.objects.create_user("bot-starter", "bot@example.com", "correct-horse-battery")
    create_account(user, "Bot start")
    _, key = create_api_token(user, "schemathesis")
    headers = {"Authorization": f"Token {key}"}
    try:
        start = schema["/paper-trading/api/bot/start/"]["POST"].Case(
            body={"prices": "replay", "speed": "3600", "runtime_minutes": 1, "intel_level": 7}
        )
        response = start.call_and_validate(headers=headers, checks=CHECKS)
        assert response.status_code == 201, response.text
        session_id = uuid.UUID(response.json()["session_id"])
        again = start.call_and_validate(headers=headers, checks=CHECKS)
        assert again.status_code == 409, again.text
        stop = schema["/paper-trading/api/bot/stop/"]["POST"].Case(body={"reason": "test done"})
        stopped = stop.call_and_validate(headers=headers, checks=CHECKS)
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["stop_requested"] is True
        assert wait_for(session_id, timeout=60), "the bot did not stop in time"
    finally:
        _stop_bots(PaperTradingAccount.objects.filter(user=user))
    session = PaperTradingSession.objects.get(pk=session_id)
    assert session.status == PaperTradingSession.Status.STOPPED, session.status_reason
