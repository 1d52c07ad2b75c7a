"""Demo apps that really answer over HTTP (on 127.0.0.1), with switchable faults, so re-triggers work offline."""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


def slug(app: str) -> str:
    return "".join(ch.lower() if ch.isalnum() else "-" for ch in app).strip("-")


@dataclass
class Request:
    app: str
    method: str
    path: str
    idempotency_key: str | None
    body: Any


@dataclass
class Sandbox:
    """The apps' state: valid tokens, queued faults, and every request received (for tests and the demo)."""

    tokens: dict[str, str] = field(default_factory=dict)  # app slug -> the token it accepts
    queued: dict[str, deque] = field(default_factory=lambda: defaultdict(deque))  # app slug -> (status, headers)
    delay_s: dict[str, float] = field(default_factory=dict)
    records: dict[tuple[str, str], Any] = field(default_factory=dict)  # (app slug, path) -> what a GET answers
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, app: str, *answers: int | tuple[int, dict[str, str]]) -> None:
        """The app's next answers, in order (e.g. 503, 503), before it answers normally again."""
        with self.lock:
            for a in answers:
                self.queued[slug(app)].append(a if isinstance(a, tuple) else (a, {}))

    def expire(self, app: str) -> None:
        with self.lock:
            self.tokens[slug(app)] = "expired-" + str(time.time())

    def answer(self, app_slug: str, method: str, path: str, headers: dict[str, str], body: Any
               ) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            self.requests.append(Request(app_slug, method, path, headers.get("idempotency-key"), body))
            delay = self.delay_s.get(app_slug, 0.0)
            queued = self.queued[app_slug].popleft() if self.queued[app_slug] else None
            token = self.tokens.get(app_slug)
        if delay:
            time.sleep(delay)
        if token is not None and headers.get("authorization") != f"Bearer {token}":
            return 401, {}, {"error": "invalid_token", "message": "access token expired"}
        if queued is not None:
            status, extra = queued
            return status, extra, {"error": "unavailable" if status >= 500 or status == 429 else "bad_request"}
        if method == "GET" and (app_slug, path) in self.records:
            return 200, {}, self.records[(app_slug, path)]
        obj_id = f"{app_slug}_{abs(hash((method, path))) % 10**8}"
        return (201 if method == "POST" else 200), {}, {"ok": True, "id": obj_id, "path": path}


def serve(sandbox: Sandbox, port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Serve `sandbox` on 127.0.0.1 in a daemon thread; returns the server and its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
            parts = self.path.split("/", 2)
            app_slug = parts[1] if len(parts) > 1 else ""
            rest = "/" + (parts[2] if len(parts) > 2 else "")
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, payload = sandbox.answer(app_slug, self.command, rest, headers, body)
            out = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(out)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815 - http.server's method names

        def log_message(self, *args: Any) -> None:  # quiet: requests are kept in sandbox.requests
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="fourgent-sandbox", daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def wsgi_app(sandbox: Sandbox) -> Callable[..., Any]:
    """The same apps as a WSGI application, for httpx.WSGITransport: in-process, no sockets."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        parts = environ.get("PATH_INFO", "/").split("/", 2)
        app_slug = parts[1] if len(parts) > 1 else ""
        rest = "/" + (parts[2] if len(parts) > 2 else "")
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        status, extra, payload = sandbox.answer(app_slug, environ["REQUEST_METHOD"], rest, headers, body)
        out = json.dumps(payload).encode()
        start_response(f"{status} {HTTPStatus(status).phrase}",
                       [("content-type", "application/json"), ("content-length", str(len(out))), *extra.items()])
        return [out]

    return app


def transport(sandbox: Sandbox) -> httpx.WSGITransport:
    """An httpx transport that answers from `sandbox` in-process (base URLs like http://sandbox/<app>)."""
    return httpx.WSGITransport(app=wsgi_app(sandbox))
