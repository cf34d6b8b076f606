"""A webhook receiver and a Telegram Bot API look-alike on 127.0.0.1, so alerts are tested over
real HTTP offline.

Both record each POST (path and JSON body) and answer with the statuses queued by
`fail_next(...)` before going back to 200; `FakeTelegram` answers like the Bot API
(`{"ok": true, "result": {...}}`, or `{"ok": false, ...}` for an unknown token).

    with FakeWebhook() as hook:
        hook.fail_next(500)
        ...
        hook.wait_for(1)
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    body: Any


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], fake: _Receiver) -> None:
        self.fake = fake
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")
        status, reply = self.server.fake._answer(Received(self.path, body))
        payload = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows failures, not access logs."""


class _Receiver:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self._attempts = 0
        self._statuses: list[int] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Receiver:
        server = _Server((self.host, 0), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def received(self) -> list[Received]:
        """The requests answered 2xx, in arrival order."""
        with self._lock:
            return list(self._received)

    @property
    def attempts(self) -> int:
        """Every request, failed ones included."""
        with self._lock:
            return self._attempts

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, then 200 again."""
        with self._lock:
            self._statuses.extend(statuses)

    def wait_for(self, count: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received

    def _answer(self, request: Received) -> tuple[int, Any]:
        with self._lock:
            self._attempts += 1
            status = self._statuses.pop(0) if self._statuses else 200
            if status < 300:
                self._received.append(request)
        return status, self._reply(request, status)

    def _reply(self, request: Received, status: int) -> Any:
        return {"ok": status < 300}


class FakeWebhook(_Receiver):
    """Any POST to any path is an alert; `url` has a secret-looking query, as real hooks do."""

    def __enter__(self) -> FakeWebhook:
        super().__enter__()
        return self

    @property
    def url(self) -> str:
        return f"{self.base_url}/hooks/alerts?key=hook-secret-123"


class FakeTelegram(_Receiver):
    """`POST /bot<token>/sendMessage` with `chat_id` and `text`, as the Bot API documents."""

    def __init__(self, token: str, host: str = "127.0.0.1") -> None:
        super().__init__(host)
        self.token = token

    def __enter__(self) -> FakeTelegram:
        super().__enter__()
        return self

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [r.body for r in self.received]

    def _answer(self, request: Received) -> tuple[int, Any]:
        if request.path != f"/bot{self.token}/sendMessage":
            with self._lock:
                self._attempts += 1
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        return super()._answer(request)

    def _reply(self, request: Received, status: int) -> Any:
        if status >= 300:
            return {"ok": False, "error_code": status, "description": "Internal Server Error"}
        return {
            "ok": True,
            "result": {
                "message_id": len(self._received),
                "chat": {"id": request.body.get("chat_id")},
                "text": request.body.get("text"),
            },
        }
