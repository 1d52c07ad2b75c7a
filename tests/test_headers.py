"""The security headers serve.py puts on every HTTP response (the browser tests try a real framing)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ui.headers import SecurityHeaders


def _client(response: PlainTextResponse) -> TestClient:
    app = Starlette(routes=[Route("/", lambda request: response)], middleware=[Middleware(SecurityHeaders)])
    return TestClient(app)


def test_every_response_forbids_framing_and_sniffing():
    got = _client(PlainTextResponse("ok")).get("/")
    assert got.headers["x-frame-options"] == "DENY"
    assert got.headers["content-security-policy"] == "frame-ancestors 'none'"
    assert got.headers["x-content-type-options"] == "nosniff" and got.headers["referrer-policy"] == "no-referrer"


def test_a_header_the_server_already_set_is_kept_not_doubled():
    got = _client(PlainTextResponse("ok", headers={"X-Frame-Options": "SAMEORIGIN"})).get("/")
    assert got.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
    assert len(got.headers.get_list("content-security-policy")) == 1

