"""Request and response bodies of the sign-in routes."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User
from rest_framework import serializers

from paper_trading.models import ApiToken
from paper_trading.selectors.accounts import user_accounts
from paper_trading.services.auth import MAX_MESSAGE_LENGTH, wallet_address


class NonceSerializer(serializers.Serializer[Any]):
    nonce = serializers.CharField(help_text="Put this in the message's `Nonce:` line.")
    expires_at = serializers.DateTimeField(help_text="The nonce is refused after this time.")
    domain = serializers.CharField(help_text="The domain the message must name.")
    uri = serializers.CharField(help_text="An URI on this origin for the message's `URI:` line.")
    chain_ids = serializers.ListField(
        child=serializers.IntegerField(), help_text="Chain ids a message may name."
    )


class SiweSignInSerializer(serializers.Serializer[Any]):
    message = serializers.CharField(
        max_length=MAX_MESSAGE_LENGTH,
        trim_whitespace=False,
        help_text="The EIP-4361 message exactly as signed.",
    )
    signature = serializers.CharField(
        max_length=1000, help_text="The EIP-191 (personal_sign) signature, 0x-prefixed hex."
    )


class LoginSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)


class UserSerializer(serializers.Serializer[User]):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    address = serializers.SerializerMethodField(
        help_text="The EIP-55 address the user signs in with; null for password-only users."
    )
    accounts = serializers.SerializerMethodField(help_text="Ids of the user's paper accounts.")

    def get_address(self, user: User) -> str | None:
        return wallet_address(user)

    def get_accounts(self, user: User) -> list[str]:
        return [str(a.account_id) for a in user_accounts(user)]


class SignInSerializer(serializers.Serializer[Any]):
    user = UserSerializer()
    address = serializers.CharField(allow_null=True)


class ApiTokenSerializer(serializers.ModelSerializer[ApiToken]):
    id = serializers.UUIDField(source="token_id", read_only=True)

    class Meta:
        model = ApiToken
        fields: tuple[str, ...] = (
            "id",
            "name",
            "prefix",
            "created_at",
            "last_used_at",
            "revoked_at",
        )
        read_only_fields = fields


class ApiTokenCreateSerializer(serializers.Serializer[Any]):
    name = serializers.CharField(max_length=100)


class ApiTokenCreatedSerializer(ApiTokenSerializer):
    key = serializers.SerializerMethodField(
        help_text="The secret key, shown only in this response: store it now."
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = (*ApiTokenSerializer.Meta.fields, "key")
        read_only_fields = fields

    def get_key(self, token: ApiToken) -> str:
        return str(self.context["key"])
