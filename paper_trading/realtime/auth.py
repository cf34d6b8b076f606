"""Who is on a websocket: an API token in the query string, else the Django session.

Scripts connect to ``ws(s)://host/ws/paper-trading/<account_id>/?token=<key>`` with the same
personal key as ``Authorization: Token <key>`` on the REST API (browsers cannot set headers on a
websocket). A token that is unknown, revoked or belongs to an inactive user makes the socket
anonymous: there is no fallback to the session then, as with the REST API. Without a ``token``
parameter the browser's session cookie is used (``AuthMiddlewareStack``).

The key is in the URL, so keep it out of access logs you do not trust (or use the session).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack  # type: ignore[import-untyped, unused-ignore]
from channels.db import database_sync_to_async  # type: ignore[import-untyped, unused-ignore]
from django.contrib.auth.models import AnonymousUser, User
from django.utils import timezone

from paper_trading.api.authentication import hash_key
from paper_trading.models import ApiToken

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_PARAM = "token"
#: Longest key accepted (a real one is ~47 characters); anything longer is not looked up.
MAX_KEY_LENGTH = 200


def token_from_scope(scope: Scope) -> str | None:
    """The ``token`` query parameter (its last value), or None if there is none."""
    raw = scope.get("query_string", b"")
    query = raw.decode("latin-1") if isinstance(raw, bytes) else str(raw)
    values = parse_qs(query, keep_blank_values=True).get(TOKEN_PARAM)
    return values[-1] if values else None


def user_for_token(key: str) -> User | AnonymousUser:
    """The active owner of an unrevoked token, else an anonymous user."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return AnonymousUser()
    token = (
        ApiToken.objects.select_related("user")
        .filter(key_hash=hash_key(key), revoked_at=None)
        .first()
    )
    if token is None or not token.user.is_active:
        return AnonymousUser()
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


class TokenAuthMiddleware:
    """Sets ``scope["user"]`` from ``?token=<key>`` when one is given; else leaves it alone."""

    def __init__(self, inner: ASGIApp) -> None:
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = token_from_scope(scope)
        if key is not None:
            scope = dict(scope)
            scope["user"] = await database_sync_to_async(user_for_token)(key)
        await self.inner(scope, receive, send)


def TokenOrSessionAuthMiddlewareStack(inner: ASGIApp) -> ASGIApp:  # noqa: N802 (like channels')
    """Session and cookies first (for the fallback), then the token overrides the user."""
    stack: ASGIApp = AuthMiddlewareStack(TokenAuthMiddleware(inner))
    return stack
