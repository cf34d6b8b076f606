"""Sign-in routes: SIWE, username/password, API tokens."""

from __future__ import annotations

from django.urls import URLPattern, path

from paper_trading.api import auth_views

urlpatterns: list[URLPattern] = [
    path("nonce/", auth_views.NonceView.as_view(), name="auth-nonce"),
    path("siwe/", auth_views.SiweSignInView.as_view(), name="auth-siwe"),
    path("login/", auth_views.PasswordLoginView.as_view(), name="auth-login"),
    path("logout/", auth_views.LogoutView.as_view(), name="auth-logout"),
    path("me/", auth_views.MeView.as_view(), name="auth-me"),
    path("tokens/", auth_views.ApiTokenListView.as_view(), name="auth-tokens"),
    path(
        "tokens/<uuid:token_id>/",
        auth_views.ApiTokenDetailView.as_view(),
        name="auth-token-detail",
    ),
]
