"""Production settings: `check --deploy` passes, the security headers are on every answer.

DJANGO_ENV=production (with SECRET_KEY and ALLOWED_HOSTS from the environment) must pass
`manage.py check --deploy --fail-level WARNING`; the checks are run as real processes, as an
operator would, and so is a request through the production configuration (HTTPS redirect,
HSTS, secure cookies). The controls (DEBUG on, a weak key, no key) show the check can fail.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from tests.paper_trading import sweep

ROOT = Path(__file__).resolve().parents[2]
HOST = "dexpaper.example.com"
#: Set by the environment of an operator, so never inherited by the processes started here.
OPERATOR_VARIABLES = (
    "DJANGO_ENV",
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
)
#: Requests through the production configuration, answered as JSON (no database needed).
REQUESTS_SCRIPT = """
import json
import django
django.setup()
from django.conf import settings
from django.test import Client
client = Client(HTTP_HOST="%(host)s")
out = {}
for name, path, secure in [
    ("page over http", "/paper-trading/login/", False),
    ("page", "/paper-trading/login/", True),
    ("api", "/paper-trading/api/portfolio/", True),
    ("healthz over http", "/healthz", False),
]:
    response = client.get(path, secure=secure)
    out[name] = {
        "status": response.status_code,
        "headers": dict(response.items()),
        "cookies": {k: bool(v["secure"]) for k, v in response.cookies.items()},
    }
out["settings"] = {
    k: getattr(settings, k)
    for k in ("DEBUG", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "ALLOWED_HOSTS")
}
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Run:
    returncode: int
    stdout: str
    stderr: str


def production_env(tmp: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OPERATOR_VARIABLES}
    env.update(
        DJANGO_ENV="production",
        SECRET_KEY=secrets.token_urlsafe(64),
        ALLOWED_HOSTS=HOST,
        # Never the project's database: nothing here should need one at all.
        DATABASE_URL=f"sqlite:///{tmp / 'unused.sqlite3'}",
    )
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Every process of this module, started at once (each is a couple of seconds of start-up)."""
    tmp = tmp_path_factory.mktemp("deploy")
    check = [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"]
    commands: dict[str, tuple[list[str], dict[str, str]]] = {
        "production": (check, production_env(tmp)),
        "debug on": (check, production_env(tmp, DEBUG="true")),
        "weak key": (check, production_env(tmp, SECRET_KEY="short")),
        "no key": (check, production_env(tmp, SECRET_KEY="")),
        "no hosts": (check, production_env(tmp, ALLOWED_HOSTS="")),
        "requests": (
            [sys.executable, "-c", REQUESTS_SCRIPT % {"host": HOST}],
            production_env(tmp, DJANGO_SETTINGS_MODULE="dexproject.settings"),
        ),
    }
    started = {
        name: subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, (command, env) in commands.items()
    }
    results = {}
    for name, process in started.items():
        out, err = process.communicate(timeout=120)
        results[name] = Run(process.returncode, out, err)
    return results


def test_production_settings_pass_check_deploy(runs: dict[str, Run]) -> None:
    run = runs["production"]
    assert run.returncode == 0, run.stderr
    assert "System check identified no issues" in run.stdout


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("debug on", "security.W018"),
        ("weak key", "security.W009"),
        ("no key", "SECRET_KEY must be set when DJANGO_ENV=production"),
        ("no hosts", "ALLOWED_HOSTS must be set when DJANGO_ENV=production"),
    ],
)
def test_insecure_production_settings_fail(runs: dict[str, Run], name: str, expected: str) -> None:
    run = runs[name]
    assert run.returncode != 0
    assert expected in run.stderr + run.stdout


def test_production_is_https_only_with_hsts_and_secure_cookies(runs: dict[str, Run]) -> None:
    run = runs["requests"]
    assert run.returncode == 0, run.stderr
    answers: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    assert answers["settings"] == {
        "DEBUG": False,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "ALLOWED_HOSTS": [HOST],
    }
    plain = answers["page over http"]
    assert plain["status"] == 301
    assert plain["headers"]["Location"] == f"https://{HOST}/paper-trading/login/"
    page, api = answers["page"], answers["api"]
    assert page["status"] == 200
    assert api["status"] == 401
    for answer in (page, api):
        headers = answer["headers"]
        hsts = "max-age=31536000; includeSubDomains; preload"
        assert headers["Strict-Transport-Security"] == hsts
        assert_security_headers(headers)
    assert page["cookies"] == {"csrftoken": True}  # the sign-in page sets it, Secure
    assert answers["healthz over http"]["status"] == 200  # probes need no TLS


def assert_security_headers(headers: Any) -> None:
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"


@pytest.mark.django_db
def test_every_page_and_endpoint_sends_the_security_headers(client: Client) -> None:
    """Success, refusal and error answers alike, for every URL pattern of the site."""
    statuses = set()
    for route in sweep.site_routes():
        url = route.url(lambda name: "00000000-0000-4000-8000-000000000000")
        response = client.get(url)
        statuses.add(response.status_code)
        assert_security_headers(response)
    assert {200, 302, 401, 404} <= statuses
