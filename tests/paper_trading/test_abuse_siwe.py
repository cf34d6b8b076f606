"""Sign-In with Ethereum under attack: tampered, transplanted, replayed and raced messages.

test_api_auth covers the honest refusals (wrong domain, URI, chain, times, another key, a
replayed body). These are forgeries: a real signature carried onto an altered message, a nonce
reused under a fresh signature or by another wallet, raw-hash signatures, oversize fields and
two sign-ins racing with one nonce. Each is a 400 whose message says which check failed; no
user or session appears, and a refused attempt leaves the nonce unspent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.db import connection
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import Hash32
from eth_utils.crypto import keccak
from rest_framework.test import APIClient

from paper_trading.models import SiweNonce
from tests.paper_trading.test_api_auth import (
    ME,
    SIWE,
    assert_error,
    get_nonce,
    sign,
    siwe_body,
    siwe_text,
)

Forgery = Callable[[LocalAccount, str, APIClient], dict[str, str]]


@pytest.fixture(autouse=True)
def _no_throttle_state() -> Iterator[None]:
    caches["default"].clear()
    yield
    caches["default"].clear()


def _carried_onto(change: Callable[[str], str]) -> Forgery:
    """A real signature of an honest message, sent with the message altered by `change`."""

    def build(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
        honest = siwe_text(wallet.address, nonce)
        altered = change(honest)
        assert altered != honest
        return {"message": altered, "signature": sign(wallet, honest)}

    return build


def _other_nonce(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
    """Signed over one fresh nonce, sent naming another fresh nonce."""
    honest = siwe_text(wallet.address, nonce)
    other = get_nonce(client)
    return {"message": honest.replace(nonce, other), "signature": sign(wallet, honest)}


def _victims_address(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
    """The attacker's valid signature over a message naming the victim's address."""
    victim = Account.create()
    honest = siwe_text(wallet.address, nonce)
    return {
        "message": honest.replace(wallet.address, victim.address),
        "signature": sign(wallet, honest),
    }


def _raw_hash(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
    """The message's keccak hash signed directly, without the EIP-191 prefix wallets add."""
    text = siwe_text(wallet.address, nonce)
    signed = wallet.unsafe_sign_hash(Hash32(keccak(text=text)))
    return {"message": text, "signature": "0x" + bytes(signed.signature).hex()}


def _lookalike_domain(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
    """Signed for 'testserv\u0435r' (a Cyrillic e), which renders like this site's name."""
    return siwe_body(wallet, nonce, domain="testserv\u0435r", uri="http://testserv\u0435r")


def _port_added(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
    return siwe_body(wallet, nonce, domain="testserver:8000", uri="http://testserver:8000")


def _with(**fields: str) -> Forgery:
    """An honest body with some of its fields replaced."""

    def build(wallet: LocalAccount, nonce: str, client: APIClient) -> dict[str, str]:
        return {**siwe_body(wallet, nonce), **fields}

    return build


FORGERIES: list[tuple[str, Forgery, str, str]] = [
    (
        "chain id changed after signing",
        _carried_onto(lambda text: text.replace("Chain ID: 8453", "Chain ID: 1")),
        "invalid_signature",
        "signature does not match address",
    ),
    (
        "statement changed after signing",
        _carried_onto(lambda text: text.replace("Sign in to dexpaper.", "Transfer everything.")),
        "invalid_signature",
        "signature does not match address",
    ),
    (
        "issued-at moved back after signing",
        _carried_onto(lambda text: text.replace("Issued At: 20", "Issued At: 19", 1)),
        "message_too_old",
        "is older than",
    ),
    ("nonce swapped after signing", _other_nonce, "invalid_signature", "does not match address"),
    ("victim's address, own signature", _victims_address, "invalid_signature", "does not match"),
    ("raw hash signed without prefix", _raw_hash, "invalid_signature", "does not match address"),
    ("lookalike domain", _lookalike_domain, "malformed_message", "malformed SIWE (EIP-4361)"),
    (
        "domain with a port",
        _port_added,
        "domain_mismatch",
        "message is for domain testserver:8000, expected testserver",
    ),
    ("empty signature", _with(signature=""), "validation_error", "signature"),
    ("signature of 10 kB", _with(signature="0x" + "ab" * 5000), "validation_error", "signature"),
    ("message of 5000 characters", _with(message="x" * 5000), "validation_error", "message"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("forge", "code", "fragment"), [pytest.param(f, c, m, id=n) for n, f, c, m in FORGERIES]
)
def test_forgeries_are_refused_and_spend_nothing(forge: Forgery, code: str, fragment: str) -> None:
    client = APIClient()
    nonce = get_nonce(client)
    response = client.post(SIWE, forge(Account.create(), nonce, client), format="json")
    assert_error(response, 400, code, fragment)
    assert not User.objects.exists()
    assert client.get(ME).status_code == 401
    assert not SiweNonce.objects.filter(used_at__isnull=False).exists()


@pytest.mark.django_db
def test_a_spent_nonce_is_refused_under_any_new_signature() -> None:
    client = APIClient()
    owner, other = Account.create(), Account.create()
    nonce = get_nonce(client)
    assert client.post(SIWE, siwe_body(owner, nonce), format="json").status_code == 200
    for wallet in (owner, other):  # the same wallet signing afresh, or anyone else
        again = APIClient().post(SIWE, siwe_body(wallet, nonce), format="json")
        assert_error(again, 400, "nonce_invalid", "nonce already used or unknown")
    swapped_case = siwe_body(other, get_nonce(client).swapcase())
    assert_error(
        APIClient().post(SIWE, swapped_case, format="json"), 400, "nonce_invalid", "unknown"
    )
    assert list(User.objects.values_list("username", flat=True)) == [owner.address]


@pytest.mark.django_db(transaction=True)
def test_two_sign_ins_racing_with_one_message_let_one_in() -> None:
    """Committed rows and two threads, each with its own database connection."""
    wallet = Account.create()
    body = siwe_body(wallet, get_nonce(APIClient()))
    start = threading.Barrier(2)
    statuses: list[int] = []

    def attempt() -> None:
        try:
            client = APIClient()
            start.wait(timeout=10)
            statuses.append(client.post(SIWE, body, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200, 400]
    assert User.objects.filter(username=wallet.address).count() == 1
