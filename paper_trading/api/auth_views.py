"""Sign-in routes: Sign-In with Ethereum, username/password, logout, who am I, API tokens.

Browsers sign in with a session cookie. The sign-in POSTs are CSRF-protected even though no
one is signed in yet (login CSRF): `GET nonce/` sets the `csrftoken` cookie, and every POST
must echo it in the `X-CSRFToken` header. Signing in rotates the token, so read the cookie
again afterwards. Scripts use `Authorization: Token <key>` (or `Bearer <key>`) instead and
need no CSRF token.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import ensure_csrf_cookie
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.authentication import CSRFCheck
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from paper_trading.api.auth_serializers import (
    ApiTokenCreatedSerializer,
    ApiTokenCreateSerializer,
    ApiTokenSerializer,
    LoginSerializer,
    NonceSerializer,
    SignInSerializer,
    SiweSignInSerializer,
    UserSerializer,
)
from paper_trading.api.errors import ErrorSerializer
from paper_trading.services import auth as auth_services

TAGS = ["auth"]
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"

CSRF_NOTE = (
    " CSRF-protected: send the `csrftoken` cookie's value (set by `GET nonce/`) in the "
    "`X-CSRFToken` header, or the request is refused with 403."
)
_ERR_400 = OpenApiResponse(ErrorSerializer, description="A check failed; `message` says which.")
_ERR_401 = OpenApiResponse(ErrorSerializer, description="Not signed in.")
_ERR_403 = OpenApiResponse(ErrorSerializer, description="CSRF token missing or wrong.")
_ERR_404 = OpenApiResponse(ErrorSerializer, description="No such token of yours.")
_ERR_429 = OpenApiResponse(ErrorSerializer, description="Too many requests; retry later.")


class SignInFailed(exceptions.APIException):
    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Sign-in failed."
    default_code = "sign_in_failed"


def _no_response(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


class CsrfProtectedMixin:
    """Enforce Django's CSRF check on unsafe methods even for anonymous requests.

    DRF exempts API views from CSRF and checks it only for session-authenticated users; a
    sign-in endpoint needs it for anonymous ones too (a forged login is an attack). This is
    what `csrf_protect` does, but the refusal comes back in the API's error shape.
    """

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        if request.method in ("GET", "HEAD", "OPTIONS", "TRACE"):
            return
        check = CSRFCheck(_no_response)
        check.process_request(request._request)  # reads the cookie into request.META
        reason = check.process_view(request._request, _no_response, (), {})
        if reason:
            raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")


def _current_user(request: Request) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


def _expected_domain(request: Request) -> str:
    return str(settings.SIWE_DOMAIN or request.get_host())


def _sign_in_body(user: User, request: Request) -> dict[str, Any]:
    data = UserSerializer(user, context={"request": request}).data
    return {"user": data, "address": data["address"]}


@method_decorator(ensure_csrf_cookie, name="dispatch")
class NonceView(APIView):
    permission_classes = (AllowAny,)
    throttle_scope = "auth"

    @extend_schema(
        tags=TAGS,
        operation_id="auth_nonce",
        summary="Get a Sign-In with Ethereum nonce",
        description=(
            "A single-use nonce for an EIP-4361 message, with the domain, URI origin and chain "
            "ids the message must use. Also sets the `csrftoken` cookie the sign-in POSTs need."
        ),
        responses={200: NonceSerializer, 429: _ERR_429},
    )
    def get(self, request: Request) -> Response:
        nonce = auth_services.issue_nonce()
        domain = _expected_domain(request)
        body = {
            "nonce": nonce.nonce,
            "expires_at": nonce.expires_at,
            "domain": domain,
            "uri": f"{request.scheme}://{domain}",
            "chain_ids": auth_services.supported_chain_ids(),
        }
        return Response(NonceSerializer(body).data)


class SiweSignInView(CsrfProtectedMixin, APIView):
    permission_classes = (AllowAny,)
    throttle_scope = "auth"

    @extend_schema(
        tags=TAGS,
        operation_id="auth_siwe",
        summary="Sign in with Ethereum",
        description=(
            "Verify a signed EIP-4361 message (domain, URI, chain id, single-use nonce, time "
            "window, EOA signature) and start a session for its address; the first sign-in "
            "creates the user." + CSRF_NOTE
        ),
        request=SiweSignInSerializer,
        responses={200: SignInSerializer, 400: _ERR_400, 403: _ERR_403, 429: _ERR_429},
    )
    def post(self, request: Request) -> Response:
        payload = SiweSignInSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            user = auth_services.sign_in_with_ethereum(
                payload.validated_data["message"],
                payload.validated_data["signature"],
                domain=_expected_domain(request),
                scheme=request.scheme or "http",
            )
        except auth_services.SiweError as exc:
            raise SignInFailed(exc.message, code=exc.code) from None
        login(request._request, user, backend=MODEL_BACKEND)
        return Response(_sign_in_body(user, request))


class PasswordLoginView(CsrfProtectedMixin, APIView):
    permission_classes = (AllowAny,)
    throttle_scope = "auth"

    @extend_schema(
        tags=TAGS,
        operation_id="auth_login",
        summary="Sign in with username and password",
        description="Start a session." + CSRF_NOTE,
        request=LoginSerializer,
        responses={200: SignInSerializer, 400: _ERR_400, 403: _ERR_403, 429: _ERR_429},
    )
    def post(self, request: Request) -> Response:
        payload = LoginSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        user = authenticate(
            request._request,
            username=payload.validated_data["username"],
            password=payload.validated_data["password"],
        )
        if not isinstance(user, User):
            raise SignInFailed("invalid username or password", code="invalid_credentials")
        login(request._request, user, backend=MODEL_BACKEND)
        return Response(_sign_in_body(user, request))


class LogoutView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=TAGS,
        operation_id="auth_logout",
        summary="Sign out",
        description=(
            "End the session. Session users must send the CSRF token; an API token stays valid "
            "(revoke it with DELETE tokens/{id}/)."
        ),
        request=None,
        responses={204: None, 401: _ERR_401, 403: _ERR_403},
    )
    def post(self, request: Request) -> Response:
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=TAGS,
        operation_id="auth_me",
        summary="The signed-in user",
        responses={200: UserSerializer, 401: _ERR_401},
    )
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(_current_user(request), context={"request": request}).data)


class ApiTokenListView(APIView):
    permission_classes = (IsAuthenticated,)
    throttle_scope = "write"

    def get_throttles(self) -> list[BaseThrottle]:
        # Only creating a token counts against the write rate.
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        tags=TAGS,
        operation_id="auth_tokens_list",
        summary="List your API tokens",
        description="Revoked tokens are included, with `revoked_at`. Keys are never shown.",
        responses={200: ApiTokenSerializer(many=True), 401: _ERR_401},
    )
    def get(self, request: Request) -> Response:
        tokens = auth_services.user_api_tokens(_current_user(request))
        return Response(ApiTokenSerializer(tokens, many=True).data)

    @extend_schema(
        tags=TAGS,
        operation_id="auth_tokens_create",
        summary="Create an API token",
        description=(
            "The response holds the key, shown this once (only its hash is stored). Use it as "
            "`Authorization: Token <key>` or `Authorization: Bearer <key>`."
        ),
        request=ApiTokenCreateSerializer,
        responses={201: ApiTokenCreatedSerializer, 400: _ERR_400, 401: _ERR_401, 429: _ERR_429},
    )
    def post(self, request: Request) -> Response:
        payload = ApiTokenCreateSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        token, key = auth_services.create_api_token(
            _current_user(request), payload.validated_data["name"]
        )
        body = ApiTokenCreatedSerializer(token, context={"key": key}).data
        return Response(body, status=status.HTTP_201_CREATED)


class ApiTokenDetailView(APIView):
    permission_classes = (IsAuthenticated,)
    throttle_scope = "write"

    @extend_schema(
        tags=TAGS,
        operation_id="auth_tokens_revoke",
        summary="Revoke an API token",
        description="The key stops working at once. Someone else's token is a 404.",
        responses={204: None, 401: _ERR_401, 404: _ERR_404, 429: _ERR_429},
    )
    def delete(self, request: Request, token_id: uuid.UUID) -> Response:
        auth_services.revoke_api_token(_current_user(request), token_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
