"""Sign-in routes: SIWE with real signatures, password login, CSRF, API tokens, throttling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.cache import caches
from django.utils import timezone
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from paper_trading.api.authentication import hash_key
from paper_trading.models import ApiToken, PaperTradingAccount, SiweNonce, WalletIdentity

BASE = "/paper-trading/api/auth/"
NONCE = BASE + "nonce/"
SIWE = BASE + "siwe/"
LOGIN = BASE + "login/"
LOGOUT = BASE + "logout/"
ME = BASE + "me/"
TOKENS = BASE + "tokens/"
PASSWORD = "correct-horse-battery"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _auth_settings(settings: Any) -> Iterator[None]:
    settings.SIWE_DOMAIN = ""
    settings.SIWE_NONCE_TTL_SECONDS = 300
    caches["default"].clear()  # throttle counters
    yield
    caches["default"].clear()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def wallet() -> LocalAccount:
    signer: LocalAccount = Account.create()
    return signer


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def siwe_text(
    address: str,
    nonce: str,
    *,
    domain: str = "testserver",
    uri: str = "http://testserver",
    chain_id: int = 8453,
    issued_at: datetime | None = None,
    expiration_time: datetime | None = None,
    not_before: datetime | None = None,
) -> str:
    """An EIP-4361 message, written out by hand the way a wallet front end builds it."""
    lines = [
        f"{domain} wants you to sign in with your Ethereum account:",
        address,
        "",
        "Sign in to dexpaper.",
        "",
        f"URI: {uri}",
        "Version: 1",
        f"Chain ID: {chain_id}",
        f"Nonce: {nonce}",
        f"Issued At: {iso(issued_at or timezone.now())}",
    ]
    if expiration_time is not None:
        lines.append(f"Expiration Time: {iso(expiration_time)}")
    if not_before is not None:
        lines.append(f"Not Before: {iso(not_before)}")
    return "\n".join(lines)


def sign(signer: LocalAccount, text: str) -> str:
    signed = signer.sign_message(encode_defunct(text=text))
    return "0x" + bytes(signed.signature).hex()


def get_nonce(client: APIClient) -> str:
    response = client.get(NONCE)
    assert response.status_code == 200, response.content
    return str(response.json()["nonce"])


def siwe_body(signer: LocalAccount, nonce: str, **kwargs: Any) -> dict[str, str]:
    text = siwe_text(signer.address, nonce, **kwargs)
    return {"message": text, "signature": sign(signer, text)}


def sign_in(client: APIClient, signer: LocalAccount, **kwargs: Any) -> Any:
    return client.post(SIWE, siwe_body(signer, get_nonce(client), **kwargs), format="json")


def assert_error(response: Any, status: int, code: str, *fragments: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code, body
    for fragment in fragments:
        assert fragment in body["error"]["message"], body


# --- nonce -------------------------------------------------------------------------------------


def test_nonce_is_random_single_row_and_sets_csrf_cookie(client: APIClient) -> None:
    response = client.get(NONCE)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"nonce", "expires_at", "domain", "uri", "chain_ids"}
    assert len(body["nonce"]) >= 16
    assert body["nonce"].isalnum()
    assert body["domain"] == "testserver"
    assert body["uri"] == "http://testserver"
    assert body["chain_ids"] == [1, 10, 8453, 42161, 84532]
    assert "csrftoken" in response.cookies
    row = SiweNonce.objects.get(nonce=body["nonce"])
    assert row.used_at is None
    ttl = (row.expires_at - row.created_at).total_seconds()
    assert 299 <= ttl <= 301
    assert get_nonce(client) != body["nonce"]


def test_nonce_names_the_configured_domain(client: APIClient, settings: Any) -> None:
    settings.SIWE_DOMAIN = "127.0.0.1:8000"
    assert client.get(NONCE).json()["domain"] == "127.0.0.1:8000"


# --- SIWE success ------------------------------------------------------------------------------


def test_siwe_creates_user_and_session(client: APIClient, wallet: LocalAccount) -> None:
    response = sign_in(client, wallet)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["address"] == wallet.address
    assert body["user"]["username"] == wallet.address
    assert body["user"]["address"] == wallet.address
    assert body["user"]["accounts"] == []

    user = User.objects.get(username=wallet.address)
    assert not user.has_usable_password()
    identity = WalletIdentity.objects.get(user=user)
    assert identity.address == wallet.address  # EIP-55 checksummed
    assert identity.last_login_chain_id == 8453
    assert SiweNonce.objects.filter(used_at__isnull=False).count() == 1

    me = client.get(ME)  # the session cookie alone authenticates
    assert me.status_code == 200
    assert me.json() == {
        "id": user.pk,
        "username": wallet.address,
        "address": wallet.address,
        "accounts": [],
    }


def test_same_address_signs_in_to_the_same_user(wallet: LocalAccount) -> None:
    first = sign_in(APIClient(), wallet)
    second = sign_in(APIClient(), wallet, chain_id=1)
    assert first.status_code == second.status_code == 200
    assert first.json()["user"]["id"] == second.json()["user"]["id"]
    assert User.objects.count() == 1
    assert WalletIdentity.objects.get().last_login_chain_id == 1


def test_me_lists_the_users_accounts(client: APIClient, wallet: LocalAccount) -> None:
    sign_in(client, wallet)
    owner = User.objects.get(username=wallet.address)
    account = PaperTradingAccount.objects.create(user=owner, name="Main")
    assert client.get(ME).json()["accounts"] == [str(account.account_id)]


def test_wallet_never_takes_over_a_password_user_with_that_name(
    client: APIClient, wallet: LocalAccount
) -> None:
    squatter = User.objects.create_user(wallet.address, password=PASSWORD)
    response = sign_in(client, wallet)
    assert response.status_code == 200
    assert response.json()["user"]["id"] != squatter.pk
    assert WalletIdentity.objects.get().user != squatter


# --- SIWE refusals -----------------------------------------------------------------------------


def test_replayed_message_is_refused(client: APIClient, wallet: LocalAccount) -> None:
    body = siwe_body(wallet, get_nonce(client))
    assert client.post(SIWE, body, format="json").status_code == 200
    replay = APIClient().post(SIWE, body, format="json")
    assert_error(replay, 400, "nonce_invalid", "nonce already used or unknown")


def test_unknown_nonce_is_refused(client: APIClient, wallet: LocalAccount) -> None:
    response = client.post(SIWE, siwe_body(wallet, "NeverIssued12345678"), format="json")
    assert_error(response, 400, "nonce_invalid", "nonce already used or unknown")
    assert not User.objects.exists()


def test_expired_nonce_is_refused(client: APIClient, wallet: LocalAccount) -> None:
    now = timezone.now()
    SiweNonce.objects.create(nonce="ExpiredNonce0000000001", expires_at=now - timedelta(seconds=1))
    body = siwe_body(wallet, "ExpiredNonce0000000001", issued_at=now - timedelta(seconds=60))
    response = client.post(SIWE, body, format="json")
    assert_error(response, 400, "nonce_expired", "nonce expired at")
    assert not User.objects.exists()


Case = Callable[[LocalAccount, str, datetime], dict[str, str]]


def _other_key(signer: LocalAccount, nonce: str, now: datetime) -> dict[str, str]:
    text = siwe_text(signer.address, nonce)
    return {"message": text, "signature": sign(Account.create(), text)}


def _lowercase_address(signer: LocalAccount, nonce: str, now: datetime) -> dict[str, str]:
    text = siwe_text(signer.address.lower(), nonce)
    return {"message": text, "signature": sign(signer, text)}


def _garbage(signer: LocalAccount, nonce: str, now: datetime) -> dict[str, str]:
    text = f"please let me in\nNonce: {nonce}"
    return {"message": text, "signature": sign(signer, text)}


def _bad_signature_hex(signer: LocalAccount, nonce: str, now: datetime) -> dict[str, str]:
    return {"message": siwe_text(signer.address, nonce), "signature": "0xnot-hex"}


def _with(**kwargs: Any) -> Case:
    def build(signer: LocalAccount, nonce: str, now: datetime) -> dict[str, str]:
        resolved = {k: v(now) if callable(v) else v for k, v in kwargs.items()}
        return siwe_body(signer, nonce, **resolved)

    return build


REFUSALS: list[tuple[str, Case, str, str]] = [
    (
        "wrong domain",
        _with(domain="evil.example", uri="http://evil.example"),
        "domain_mismatch",
        "message is for domain evil.example, expected testserver",
    ),
    (
        "wrong URI host",
        _with(uri="http://evil.example/login"),
        "uri_mismatch",
        "message URI http://evil.example/login is not on this site",
    ),
    (
        "wrong URI scheme",
        _with(uri="https://testserver"),
        "uri_mismatch",
        "expected http://testserver",
    ),
    (
        "unsupported chain",
        _with(chain_id=999),
        "unsupported_chain",
        "chain id 999 is not supported (supported: 1, 10, 8453, 42161, 84532)",
    ),
    (
        "expired message",
        _with(expiration_time=lambda now: now - timedelta(seconds=5)),
        "message_expired",
        "message expired at ",
    ),
    (
        "not yet valid",
        _with(not_before=lambda now: now + timedelta(minutes=10)),
        "message_not_yet_valid",
        "message not valid before ",
    ),
    (
        "issued in the future",
        _with(issued_at=lambda now: now + timedelta(minutes=5)),
        "issued_in_future",
        "is in the future",
    ),
    (
        "issued too long ago",
        _with(issued_at=lambda now: now - timedelta(hours=1)),
        "message_too_old",
        "is older than 300 s",
    ),
    ("signed by another key", _other_key, "invalid_signature", "signature does not match address"),
    ("signature not hex", _bad_signature_hex, "invalid_signature", "signature does not match"),
    ("malformed message", _garbage, "malformed_message", "malformed SIWE (EIP-4361) message"),
    ("address not EIP-55", _lowercase_address, "malformed_message", "EIP-55"),
]


@pytest.mark.parametrize(
    ("build", "code", "fragment"),
    [pytest.param(b, c, f, id=name) for name, b, c, f in REFUSALS],
)
def test_siwe_refusals(
    client: APIClient, wallet: LocalAccount, build: Case, code: str, fragment: str
) -> None:
    nonce = get_nonce(client)
    response = client.post(SIWE, build(wallet, nonce, timezone.now()), format="json")
    assert_error(response, 400, code, fragment)
    assert not User.objects.exists()
    assert client.get(ME).status_code in (401, 403)  # no session was started
    # A refused attempt does not spend the nonce: a forger cannot burn a real user's sign-in.
    assert SiweNonce.objects.get(nonce=nonce).used_at is None


def test_wrong_domain_message_names_the_configured_domain(
    client: APIClient, wallet: LocalAccount, settings: Any
) -> None:
    settings.SIWE_DOMAIN = "127.0.0.1:8000"
    body = siwe_body(wallet, get_nonce(client), domain="evil.example", uri="http://evil.example")
    response = client.post(SIWE, body, format="json")
    assert_error(
        response,
        400,
        "domain_mismatch",
        "message is for domain evil.example, expected 127.0.0.1:8000",
    )


def test_signature_error_names_the_claimed_address(client: APIClient, wallet: LocalAccount) -> None:
    body = _other_key(wallet, get_nonce(client), timezone.now())
    response = client.post(SIWE, body, format="json")
    assert_error(response, 400, "invalid_signature", f"does not match address {wallet.address}")


def test_siwe_body_fields_are_required(client: APIClient) -> None:
    response = client.post(SIWE, {"message": "x"}, format="json")
    assert_error(response, 400, "validation_error", "signature")
    assert response.json()["error"]["fields"]["signature"]


# --- CSRF --------------------------------------------------------------------------------------


def test_siwe_post_needs_the_csrf_token(wallet: LocalAccount) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    nonce_response = browser.get(NONCE)
    token = nonce_response.cookies["csrftoken"].value
    body = siwe_body(wallet, nonce_response.json()["nonce"])

    refused = browser.post(SIWE, body, format="json")
    assert_error(refused, 403, "permission_denied", "CSRF")
    assert not User.objects.exists()

    accepted = browser.post(SIWE, body, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 200, accepted.content
    assert browser.get(ME).json()["address"] == wallet.address


def test_password_login_needs_the_csrf_token(user: User) -> None:
    browser = APIClient(enforce_csrf_checks=True)
    credentials = {"username": "alice", "password": PASSWORD}
    assert_error(browser.post(LOGIN, credentials, format="json"), 403, "permission_denied", "CSRF")
    token = browser.get(NONCE).cookies["csrftoken"].value
    response = browser.post(LOGIN, credentials, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200, response.content


# --- username / password -----------------------------------------------------------------------


def test_password_login_and_logout(client: APIClient, user: User) -> None:
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert response.json() == {
        "user": {"id": user.pk, "username": "alice", "address": None, "accounts": []},
        "address": None,
    }
    assert client.get(ME).json()["username"] == "alice"

    assert client.post(LOGOUT).status_code == 204
    assert client.get(ME).status_code in (401, 403)


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong-password"), ("nobody", PASSWORD)]
)
def test_password_login_fails_clearly(
    client: APIClient, user: User, username: str, password: str
) -> None:
    response = client.post(LOGIN, {"username": username, "password": password}, format="json")
    assert_error(response, 400, "invalid_credentials", "invalid username or password")
    assert client.get(ME).status_code in (401, 403)


def test_inactive_user_cannot_log_in(client: APIClient, user: User) -> None:
    user.is_active = False
    user.save()
    response = client.post(LOGIN, {"username": "alice", "password": PASSWORD}, format="json")
    assert_error(response, 400, "invalid_credentials")


def test_logout_needs_a_user(client: APIClient) -> None:
    assert_error(client.post(LOGOUT), 401, "not_authenticated")


def test_me_unauthenticated_is_an_error_in_the_api_shape(client: APIClient) -> None:
    response = client.get(ME)
    assert response.status_code in (401, 403)
    assert_error(response, response.status_code, "not_authenticated")


# --- API tokens --------------------------------------------------------------------------------


@pytest.fixture
def alice(user: User) -> APIClient:
    session = APIClient()
    session.force_login(user)
    return session


def create_token(session: APIClient, name: str = "bot") -> dict[str, Any]:
    response = session.post(TOKENS, {"name": name}, format="json")
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


def test_token_is_shown_once_and_stored_hashed(alice: APIClient, user: User) -> None:
    created = create_token(alice)
    key = created["key"]
    assert key.startswith("dxp_")
    assert len(key) > 30
    assert set(created) == {
        "id",
        "name",
        "prefix",
        "created_at",
        "last_used_at",
        "revoked_at",
        "key",
    }
    assert key.startswith(created["prefix"])
    row = ApiToken.objects.get(pk=created["id"])
    assert row.user == user
    assert row.key_hash == hash_key(key)
    assert key not in {row.key_hash, row.prefix, row.name}

    listing = alice.get(TOKENS)
    assert listing.status_code == 200
    assert key not in listing.content.decode()
    [shown] = listing.json()
    assert "key" not in shown
    assert shown["id"] == created["id"]
    assert shown["revoked_at"] is None


@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_token_authenticates_scripts(alice: APIClient, keyword: str) -> None:
    key = create_token(alice)["key"]
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"{keyword} {key}")
    response = script.get(ME)
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert ApiToken.objects.get().last_used_at is not None


def test_token_clients_need_no_csrf_token(alice: APIClient) -> None:
    key = create_token(alice)["key"]
    script = APIClient(enforce_csrf_checks=True)
    script.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert script.post(TOKENS, {"name": "second"}, format="json").status_code == 201


def test_revoked_token_stops_working(alice: APIClient) -> None:
    created = create_token(alice)
    script = APIClient()
    script.credentials(HTTP_AUTHORIZATION=f"Token {created['key']}")
    assert script.get(ME).status_code == 200

    assert alice.delete(f"{TOKENS}{created['id']}/").status_code == 204
    assert_error(script.get(ME), 401, "authentication_failed", "revoked")
    [shown] = alice.get(TOKENS).json()
    assert shown["revoked_at"] is not None
    assert alice.delete(f"{TOKENS}{created['id']}/").status_code == 204  # idempotent


def test_someone_elses_token_is_not_found(alice: APIClient) -> None:
    created = create_token(alice)
    bob = APIClient()
    bob.force_login(User.objects.create_user("bob", password=PASSWORD))
    assert_error(bob.delete(f"{TOKENS}{created['id']}/"), 404, "not_found")
    assert bob.get(TOKENS).json() == []
    assert ApiToken.objects.get().revoked_at is None


def test_unknown_token_key_is_refused(client: APIClient) -> None:
    client.credentials(HTTP_AUTHORIZATION="Token dxp_nope")
    assert_error(client.get(ME), 401, "authentication_failed")


def test_token_name_is_required(alice: APIClient) -> None:
    response = alice.post(TOKENS, {}, format="json")
    assert_error(response, 400, "validation_error", "name")


def test_tokens_need_a_user(client: APIClient) -> None:
    assert client.get(TOKENS).status_code in (401, 403)
    assert client.post(TOKENS, {"name": "x"}, format="json").status_code in (401, 403)


# --- throttling --------------------------------------------------------------------------------


@pytest.fixture
def low_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    # DRF copies the rates onto the class at import, so patch them there.
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"auth": "3/min", "write": "2/min"})


@pytest.mark.usefixtures("low_rates")
def test_auth_scope_is_throttled(client: APIClient, user: User) -> None:
    for _ in range(2):
        assert client.get(NONCE).status_code == 200
    bad = {"username": "alice", "password": "guess"}
    assert client.post(LOGIN, bad, format="json").status_code == 400
    assert_error(client.post(LOGIN, bad, format="json"), 429, "throttled")
    assert_error(client.get(NONCE), 429, "throttled")


@pytest.mark.usefixtures("low_rates")
def test_token_creation_is_throttled_but_listing_is_not(alice: APIClient) -> None:
    create_token(alice, "one")
    create_token(alice, "two")
    assert_error(alice.post(TOKENS, {"name": "three"}, format="json"), 429, "throttled")
    for _ in range(5):
        assert alice.get(TOKENS).status_code == 200


# --- schema ------------------------------------------------------------------------------------


def test_schema_documents_the_auth_routes_and_their_errors() -> None:
    from django.urls import include, path
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator(  # type: ignore[no-untyped-call]
        patterns=[path("paper-trading/api/auth/", include("paper_trading.api.auth_urls"))]
    )
    schema = generator.get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    paths = schema["paths"]
    siwe = paths["/paper-trading/api/auth/siwe/"]["post"]
    assert {"200", "400", "403", "429"} <= set(siwe["responses"])
    assert "CSRF" in siwe["description"]
    error_ref = siwe["responses"]["400"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("/Error")
    assert set(paths) == {
        f"/paper-trading/api/auth/{p}"
        for p in ("nonce/", "siwe/", "login/", "logout/", "me/", "tokens/", "tokens/{token_id}/")
    }
    created = paths["/paper-trading/api/auth/tokens/"]["post"]["responses"]["201"]
    assert created["content"]["application/json"]["schema"]["$ref"].endswith("/ApiTokenCreated")


# --- service and admin -------------------------------------------------------------------------


def test_service_spends_a_nonce_exactly_once(wallet: LocalAccount) -> None:
    from paper_trading.services.auth import SiweError, issue_nonce, sign_in_with_ethereum

    nonce = issue_nonce()
    body = siwe_body(wallet, nonce.nonce)
    user = sign_in_with_ethereum(
        body["message"], body["signature"], domain="testserver", scheme="http"
    )
    assert user.username == wallet.address
    with pytest.raises(SiweError) as refused:
        sign_in_with_ethereum(
            body["message"], body["signature"], domain="testserver", scheme="http"
        )
    assert refused.value.code == "nonce_invalid"
    assert "nonce already used or unknown" in str(refused.value)


@pytest.mark.parametrize("model", ["apitoken", "walletidentity", "siwenonce"])
def test_admin_lists_sign_in_records(alice: APIClient, wallet: LocalAccount, model: str) -> None:
    create_token(alice)
    sign_in(APIClient(), wallet)
    admin = APIClient()
    admin.force_login(User.objects.create_superuser("root", password=PASSWORD))
    response = admin.get(f"/admin/paper_trading/{model}/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
