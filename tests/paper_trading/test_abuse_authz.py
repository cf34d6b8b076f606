"""Authorization sweep: every endpoint and page of the site, as another user and as nobody.

Alice owns an account a replay bot filled (trades, positions, thoughts, metrics, a session), its
strategy configuration, API tokens and a wallet. Bob has an account of his own. The sweep walks
the OpenAPI schema's operations and every URL pattern of the site (`sweep`), so an endpoint added
later is covered without being named here. Each URL is sent with every method, once aimed at
Alice (her ids in the path, in ``?account=`` and in the body's ``account``) and once plain, as
Bob and anonymously:

* never a 5xx, and never one of Alice's ids or names in the answer (unless the caller sent it);
* every row Alice owns is unchanged after each request;
* an API operation taking one of her ids answers Bob 404, while the same request by Alice is no
  404 (the id is real); a page naming her object in its path refuses him too;
* anonymous callers are refused (401/403/405, or sent to sign in) except where the schema marks
  an operation public or the page is listed in PUBLIC_ROUTES.

A URL parameter the sweep cannot fill fails it, naming the route: say which object it names.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.core.management import call_command
from django.db import models, transaction
from django.test import Client

from paper_trading.models import (
    PaperAIThoughtLog,
    PaperPosition,
    PaperTrade,
    PaperTradingAccount,
    WalletIdentity,
)
from paper_trading.services.accounts import create_account
from paper_trading.services.auth import create_api_token
from tests.paper_trading import sweep

pytestmark = pytest.mark.django_db

#: Pages anonymous callers may see (route as written, prefixes joined).
PUBLIC_ROUTES = frozenset(
    {
        "",  # redirects to the dashboard, which then asks to sign in
        "healthz",
        "readyz",
        "metrics",  # open unless METRICS_TOKEN is set; holds no per-user data
        "api/schema/",
        "api/docs/",
        "paper-trading/login/",
        "admin/login/",
        "admin/logout/",  # sends anonymous callers to the admin index, which asks to sign in
    }
)
#: URL and body parameters that name one of Alice's objects.
ALICE_PARAMETERS = frozenset({"account_id", "account", "token_id", "thought_id"})
LOGIN_PAGES = ("/paper-trading/login/", "/admin/login/")


@dataclass(frozen=True)
class Alice:
    user_id: int
    account_id: str
    token_id: str
    thought_id: str
    #: Her ids and names: none may reach anyone else.
    markers: frozenset[str]


@pytest.fixture(scope="module")
def alice(django_db_setup: None, django_db_blocker: Any) -> Iterator[Alice]:
    """Alice and everything she owns, committed once for the module."""
    tag = secrets.token_hex(4)
    username, account_name = f"alice-{tag}", f"Alice private {tag}"
    with django_db_blocker.unblock():
        user = User.objects.create_user(username, f"{username}@example.com")
        account = create_account(user, account_name)
        call_command(
            "run_paper_bot",
            *("--account", account_name, "--user", username, "--prices", "replay"),
            *("--max-ticks", "80", "--intel", "10"),
            verbosity=0,
        )
        token, key = create_api_token(user, f"script {tag}")
        wallet = WalletIdentity.objects.create(
            user=user, address=f"0x{secrets.token_hex(20)}", last_login_chain_id=8453
        )
        thought = PaperAIThoughtLog.objects.filter(account=account).first()
        assert thought is not None
        assert PaperTrade.objects.filter(account=account).exists()
        assert PaperPosition.objects.filter(account=account).exists()
        ids = sweep.owned_ids(user.pk)
        assert len(ids) > 100  # her trades, positions, thoughts, metrics, sessions, tokens
        markers = {
            username,
            account_name,
            user.email,
            token.prefix,
            key,
            wallet.address,
            *ids,
            *(i.replace("-", "") for i in ids),  # uuid.hex too
        }
    yield Alice(
        user.pk, str(account.account_id), str(token.pk), str(thought.pk), frozenset(markers)
    )
    with django_db_blocker.unblock():
        User.objects.filter(pk=user.pk).delete()


@pytest.fixture
def bob(alice: Alice) -> User:
    """Bob, with an account of his own; both his and Alice's accounts look busy."""
    user = User.objects.create_user("bob", "bob@example.com")
    sweep.pretend_bot_runs(create_account(user, "Bob's"))
    sweep.pretend_bot_runs(PaperTradingAccount.objects.get(pk=alice.account_id))
    return user


# -- requests ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probe:
    """One request of the sweep."""

    label: str
    method: str
    url: str
    body: dict[str, Any] | None
    #: It names one of Alice's objects where the endpoint takes an id: Bob must be refused.
    aimed_by_id: bool
    #: The documented operation, for API requests.
    operation: sweep.Operation | None = None

    @property
    def sent(self) -> str:
        return self.url + json.dumps(self.body or {})

    def send(self, client: Client) -> Any:
        cache.clear()  # throttle counters: the sweep must never be answered 429 instead
        if self.method == "GET":
            return client.get(self.url)
        data = json.dumps(self.body or {})
        return client.generic(self.method, self.url, data, content_type="application/json")


def _admin_object(route: sweep.Route, alice: Alice) -> str:
    """The pk of the admin page's model's row that is Alice's (or of any row)."""
    if "content_type_id" in route.parameters:  # "view on site": her account's content type
        return alice.account_id
    match = re.match(r"admin/(\w+)/(\w+)/", route.route)
    assert match, f"an admin object URL outside a model's pages: {route.route}"
    model: type[models.Model] = apps.get_model(match[1], match[2])
    owner = sweep.owner_lookup(model)
    query = model._default_manager.all()
    row = (query.filter(**{owner: alice.user_id}) if owner else query).first()
    return str(row.pk) if row is not None else "1"


def filler(alice: Alice, route: sweep.Route | None, label: str) -> Callable[[str], str]:
    """Fills a URL parameter with Alice's object of that kind, or a harmless constant."""

    def fill(name: str) -> str:
        fixed = {
            "account_id": alice.account_id,
            "account": alice.account_id,
            "token_id": alice.token_id,
            "thought_id": alice.thought_id,
            "token_symbol": "WETH",
            "app_label": "paper_trading",
            "url": "no-such-page/",
            "content_type_id": str(ContentType.objects.get_for_model(PaperTradingAccount).pk),
        }
        if name in fixed:
            return fixed[name]
        if name in ("object_id", "id") and route is not None:
            return _admin_object(route, alice)
        pytest.fail(f"{label}: unknown URL parameter {name!r}; say which object it names")

    return fill


def api_probes(alice: Alice) -> list[Probe]:
    """Each documented operation aimed at Alice and plain, and each undocumented method."""
    probes: list[Probe] = []
    documented = {(op.method, op.path): op for op in sweep.api_operations()}
    for path in sorted({p for _, p in documented}):
        for method in sweep.METHODS:
            op = documented.get((method, path))
            label = f"{method} {path}"
            url = sweep.fill_path(path, filler(alice, None, label))
            names_in_path = set(re.findall(r"\{(\w+)\}", path))
            query = {p["name"] for p in op.parameters("query")} if op else set()
            body_schema = (op.body_schema if op else None) or {}
            properties = body_schema.get("properties", {})
            required = {
                name: sweep.minimal_value(properties[name])
                for name in body_schema.get("required", [])
            }
            missing = [
                p["name"]
                for p in (op.parameters("query") if op else [])
                if p.get("required") and p["name"] not in ALICE_PARAMETERS
            ]
            assert not missing, f"{label}: required query parameters {missing}; fill them"
            aimed_body = {**required, "account": alice.account_id}
            separator = "&" if "?" in url else "?"
            probes.append(
                Probe(
                    label,
                    method,
                    f"{url}{separator}account={alice.account_id}",
                    None if method == "GET" else aimed_body,
                    aimed_by_id=bool(
                        op
                        and (
                            names_in_path & ALICE_PARAMETERS
                            or "account" in query
                            or "account" in properties
                        )
                    ),
                    operation=op,
                )
            )
            if not names_in_path & ALICE_PARAMETERS:
                body = None if method == "GET" else required
                probes.append(Probe(label, method, url, body, False, op))
    return probes


def page_probes(alice: Alice) -> list[Probe]:
    """Every URL pattern outside the API (pages, admin, health, schema), aimed and plain."""
    probes: list[Probe] = []
    for route in sweep.site_routes():
        if sweep.api_route(route):
            continue
        label = f"/{route.route}"
        url = route.url(filler(alice, route, label))
        by_id = bool(set(route.parameters) & (ALICE_PARAMETERS | {"object_id", "id"}))
        for method in ("GET", "POST"):
            probes.append(
                Probe(f"{method} {label}", method, f"{url}?account={alice.account_id}", None, by_id)
            )
            if not by_id:
                probes.append(Probe(f"{method} {label}", method, url, None, False))
    return probes


# -- checks ------------------------------------------------------------------------------------


def _body(response: Any) -> str:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode(errors="replace")
    return str(response.content.decode(errors="replace"))


def leaks(response: Any, probe: Probe, alice: Alice) -> list[str]:
    """Alice's markers in the answer (and its headers) that the caller did not send itself."""
    text = _body(response) + " ".join(f"{k}: {v}" for k, v in response.items())
    return sorted(m for m in alice.markers if m in text and m not in probe.sent)


def refused(response: Any) -> bool:
    if response.status_code in (401, 403, 404, 405):
        return True
    location = response.get("Location", "")
    return bool(response.status_code == 302 and location.startswith(LOGIN_PAGES))


def _signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _as_alice(probe: Probe, alice: Alice) -> Any:
    """The same request by Alice, rolled back: shows the ids Bob was refused are real."""
    with transaction.atomic():
        response = probe.send(_signed_in(User.objects.get(pk=alice.user_id)))
        transaction.set_rollback(True)
    return response


def test_bob_reaches_nothing_of_alice(alice: Alice, bob: User) -> None:
    before = sweep.holdings(alice.user_id)
    problems: list[str] = []
    probes = api_probes(alice) + page_probes(alice)
    client = _signed_in(bob)
    for probe in probes:
        if "_auth_user_id" not in client.session:  # a probe signed him out
            client = _signed_in(bob)
        response = probe.send(client)
        what = f"{probe.label} ({probe.url}) -> {response.status_code}"
        if response.status_code >= 500 and not (
            probe.operation and response.status_code in probe.operation.statuses
        ):
            problems.append(f"{what}: server error")
        if found := leaks(response, probe, alice):
            problems.append(f"{what}: leaks {found}")
        # Accepted writes are checked at once; all the others by the check after the sweep.
        accepted = probe.method in sweep.UNSAFE and not refused(response)
        accepted = accepted and response.status_code < 400
        if accepted and sweep.holdings(alice.user_id) != before:
            problems.append(f"{what}: changed Alice's rows")
            before = sweep.holdings(alice.user_id)
        if not probe.aimed_by_id:
            continue
        if probe.operation is not None and response.status_code != 404:
            problems.append(f"{what}: expected 404 for Alice's id")
        elif not refused(response):
            problems.append(f"{what}: not refused")
        elif not probe.url.startswith("/admin/"):
            control = _as_alice(probe, alice)
            if control.status_code in (403, 404):
                problems.append(f"{what}: Alice herself gets {control.status_code}: no real id")
    assert sweep.holdings(alice.user_id) == before
    assert not problems, "\n".join(problems)
    assert len(probes) > 150  # the sweep found the site's endpoints


def test_nobody_reaches_anything_private(alice: Alice) -> None:
    before = sweep.holdings(alice.user_id)
    problems: list[str] = []
    for probe in api_probes(alice) + page_probes(alice):
        response = probe.send(Client())
        what = f"{probe.label} ({probe.url}) -> {response.status_code}"
        if found := leaks(response, probe, alice):
            problems.append(f"{what}: leaks {found}")
        if response.status_code >= 500:
            problems.append(f"{what}: server error")
        public = (
            probe.operation.public
            if probe.operation is not None
            else probe.label.split(" ", 1)[1].lstrip("/") in PUBLIC_ROUTES
        )
        if public:
            continue
        if probe.operation is not None and response.status_code == 401:
            assert set(response.json()["error"]) == {"code", "message", "fields"}
        elif not refused(response):
            problems.append(f"{what}: open to anonymous callers")
    assert sweep.holdings(alice.user_id) == before
    assert not problems, "\n".join(problems)


def test_every_api_url_pattern_is_documented_and_swept() -> None:
    """The sweep reads the schema for the API: an undocumented API route would escape it."""
    documented = {op.path.strip("/") for op in sweep.api_operations()}
    missing = []
    for route in sweep.site_routes():
        if not sweep.api_route(route) or route.name == "api-not-found":
            continue
        template = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route.route).strip("/")
        if template not in documented:
            missing.append(route.route)
    assert not missing, f"API routes missing from the OpenAPI schema: {missing}"
