"""Signing in: Sign-In with Ethereum (EIP-4361) and personal API tokens.

A SIWE sign-in is accepted only if every check passes: the message parses, names this site's
domain and origin, a supported chain, a nonce this server issued that is unexpired and unused,
a time window that includes now, and a signature that recovers to the message's address (an
EOA: no EIP-1271 contract wallets, so no RPC call). The nonce is spent with one conditional
UPDATE, so two requests racing with the same message cannot both succeed.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone

from paper_trading.api.authentication import hash_key, new_key
from paper_trading.engine.chains import CHAINS
from paper_trading.models import ApiToken, SiweNonce, WalletIdentity

NONCE_LENGTH = 24
_NONCE_ALPHABET = string.ascii_letters + string.digits
#: How far a client's clock may run ahead of ours when it stamps "Issued At".
CLOCK_SKEW = timedelta(seconds=60)
#: Spent or expired nonces are kept this long (for clear "already used" errors), then purged.
NONCE_RETENTION = timedelta(days=1)
#: Characters of a new API key kept in clear so a user can tell tokens apart.
TOKEN_PREFIX_LENGTH = 12
MAX_MESSAGE_LENGTH = 4096


@dataclass
class SiweError(Exception):
    """A sign-in attempt was refused; `message` says which check failed."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def supported_chain_ids() -> list[int]:
    return sorted(CHAINS)


def nonce_ttl() -> timedelta:
    return timedelta(seconds=int(settings.SIWE_NONCE_TTL_SECONDS))


def issue_nonce() -> SiweNonce:
    """A fresh single-use nonce, valid for SIWE_NONCE_TTL_SECONDS."""
    now = timezone.now()
    SiweNonce.objects.filter(expires_at__lt=now - NONCE_RETENTION).delete()
    nonce = "".join(secrets.choice(_NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    return SiweNonce.objects.create(nonce=nonce, expires_at=now + nonce_ttl())


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _as_datetime(value: Any) -> datetime:
    moment: datetime = value._datetime
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _parse(message: str) -> Any:
    if len(message) > MAX_MESSAGE_LENGTH:
        raise SiweError(
            "malformed_message", f"message is longer than {MAX_MESSAGE_LENGTH} characters"
        )
    # Imported here: siwe pulls in web3, about a second of start-up no other route needs.
    from siwe import SiweMessage

    try:
        return SiweMessage.from_message(message)
    except Exception as exc:  # the parser raises ValueError, pydantic errors, grammar errors
        detail = _parse_error_detail(exc)
        raise SiweError(
            "malformed_message", f"malformed SIWE (EIP-4361) message: {detail}"
        ) from None


def _parse_error_detail(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic: name the offending fields
        try:
            parts = [
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}"
                for e in errors()
            ]
        except Exception:
            parts = []
        if parts:
            return "; ".join(parts)
    return "it does not follow the EIP-4361 format"


def _check_origin(parsed: Any, *, domain: str, scheme: str) -> None:
    expected = domain.lower()
    if str(parsed.domain).lower() != expected:
        raise SiweError(
            "domain_mismatch", f"message is for domain {parsed.domain}, expected {domain}"
        )
    if parsed.scheme and str(parsed.scheme).lower() != scheme.lower():
        raise SiweError(
            "scheme_mismatch", f"message is for scheme {parsed.scheme}, expected {scheme}"
        )
    uri = urlsplit(str(parsed.uri))
    if uri.scheme.lower() != scheme.lower() or uri.netloc.lower() != expected:
        raise SiweError(
            "uri_mismatch",
            f"message URI {parsed.uri} is not on this site, expected {scheme}://{domain}",
        )


def _check_chain(parsed: Any) -> int:
    chain_id = int(parsed.chain_id)
    if chain_id not in CHAINS:
        supported = ", ".join(str(c) for c in supported_chain_ids())
        raise SiweError(
            "unsupported_chain",
            f"chain id {chain_id} is not supported (supported: {supported})",
        )
    return chain_id


def _check_times(parsed: Any, now: datetime) -> None:
    issued_at = _as_datetime(parsed.issued_at)
    if issued_at > now + CLOCK_SKEW:
        raise SiweError("issued_in_future", f"message issued at {_iso(issued_at)} is in the future")
    ttl = nonce_ttl()
    if issued_at < now - ttl:
        raise SiweError(
            "message_too_old",
            f"message issued at {_iso(issued_at)} is older than {int(ttl.total_seconds())} s; "
            "sign a new one",
        )
    if parsed.expiration_time is not None:
        expires = _as_datetime(parsed.expiration_time)
        if now >= expires:
            raise SiweError("message_expired", f"message expired at {_iso(expires)}")
    if parsed.not_before is not None:
        not_before = _as_datetime(parsed.not_before)
        if now < not_before:
            raise SiweError("message_not_yet_valid", f"message not valid before {_iso(not_before)}")


def _check_signature(parsed: Any, signature: str, now: datetime) -> None:
    from siwe import VerificationError

    try:
        # No provider: only externally owned accounts (plain ECDSA recovery), no RPC call.
        parsed.verify(signature.strip(), timestamp=now)
    except (VerificationError, ValueError, TypeError):
        raise SiweError(
            "invalid_signature", f"signature does not match address {parsed.address}"
        ) from None


def _spend_nonce(nonce: str, now: datetime) -> None:
    spent = SiweNonce.objects.filter(nonce=nonce, used_at=None, expires_at__gt=now).update(
        used_at=now
    )
    if spent == 1:
        return
    row = SiweNonce.objects.filter(nonce=nonce).first()
    if row is not None and row.used_at is None and row.expires_at <= now:
        raise SiweError(
            "nonce_expired",
            f"nonce expired at {_iso(row.expires_at)}; request a new one from GET nonce/",
        )
    raise SiweError("nonce_invalid", "nonce already used or unknown; request a new one")


def _user_for_address(address: str, chain_id: int) -> User:
    wallet = WalletIdentity.objects.select_related("user").filter(address=address).first()
    if wallet is not None:
        WalletIdentity.objects.filter(pk=wallet.pk).update(last_login_chain_id=chain_id)
        return wallet.user
    username = address
    if User.objects.filter(username=username).exists():
        # Someone registered this name with a password: never hand their account to a wallet.
        username = f"{address}-{secrets.token_hex(3)}"
    try:
        with transaction.atomic():
            user = User(username=username)
            user.set_unusable_password()
            user.save()
            WalletIdentity.objects.create(address=address, user=user, last_login_chain_id=chain_id)
    except IntegrityError:
        # A concurrent first sign-in for the same address won the race: use its user.
        wallet = WalletIdentity.objects.select_related("user").get(address=address)
        return wallet.user
    return user


def sign_in_with_ethereum(message: str, signature: str, *, domain: str, scheme: str) -> User:
    """The user for the address that signed `message`, created on first sign-in.

    `domain` is the host (with port, if any) the message must name, `scheme` the request's
    scheme ("http"/"https"); the message's URI must be on that origin. Raises `SiweError`.
    """
    parsed = _parse(message)
    now = timezone.now()
    _check_origin(parsed, domain=domain, scheme=scheme)
    chain_id = _check_chain(parsed)
    _check_times(parsed, now)
    _check_signature(parsed, signature, now)
    address = str(parsed.address)  # EIP-55 checksummed: the parser rejects anything else
    with transaction.atomic():
        _spend_nonce(str(parsed.nonce), now)
        user = _user_for_address(address, chain_id)
    if not user.is_active:
        raise SiweError("account_disabled", "this account is disabled")
    return user


def wallet_address(user: User) -> str | None:
    """The checksummed address the user signs in with, if any."""
    return WalletIdentity.objects.filter(user=user).values_list("address", flat=True).first()


def user_api_tokens(user: User) -> list[ApiToken]:
    """The user's tokens, newest first, revoked ones included (they show `revoked_at`)."""
    return list(ApiToken.objects.filter(user=user).order_by("-created_at"))


def create_api_token(user: User, name: str) -> tuple[ApiToken, str]:
    """A new token and its plaintext key: the only time the key exists outside the caller."""
    key = new_key()
    token = ApiToken.objects.create(
        user=user, name=name.strip(), prefix=key[:TOKEN_PREFIX_LENGTH], key_hash=hash_key(key)
    )
    return token, key


def revoke_api_token(user: User, token_id: uuid.UUID | str) -> ApiToken:
    """Revoke one of the user's tokens; someone else's (or no) token is a 404. Idempotent."""
    try:
        key = uuid.UUID(str(token_id))
    except ValueError:
        raise Http404(f"no API token {token_id}") from None
    token = ApiToken.objects.filter(user=user, pk=key).first()
    if token is None:
        raise Http404(f"no API token {token_id}")
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return token
