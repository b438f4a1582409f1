"""error_from_response: Graph's error JSON, Entra's token error shape, non-JSON bodies, missing headers."""

from __future__ import annotations

import json
from email.utils import formatdate

import httpx
import pytest

from graph.errors import (
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GraphError,
    GraphUnavailableError,
    NotFoundError,
    PermissionDeniedError,
    ThrottledError,
    TokenError,
    error_from_response,
    parse_retry_after,
)


def graph_body(
    code: str, message: str, request_id: str = "rid-inner", client_id: str = "crid-inner"
) -> bytes:
    return json.dumps(
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": "2025-02-13T10:17:06",
                    "request-id": request_id,
                    "client-request-id": client_id,
                },
            }
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (409, ConflictError),
        (429, ThrottledError),
        (500, GraphUnavailableError),
        (503, GraphUnavailableError),
        (504, GraphUnavailableError),
        (418, GraphError),
    ],
)
def test_status_maps_to_one_error_class(status: int, cls: type[GraphError]) -> None:
    err = error_from_response(status, graph_body("someCode", "Some message."), {})
    assert type(err) is cls
    assert err.status == status and err.code == "someCode" and err.message == "Some message."


def test_request_id_comes_from_the_header_before_the_inner_error() -> None:
    headers = httpx.Headers({"request-id": "rid-header", "client-request-id": "crid-header"})
    err = error_from_response(
        403, graph_body("Authorization_RequestDenied", "Insufficient privileges."), headers
    )
    assert err.request_id == "rid-header"
    assert err.client_request_id == "crid-header"
    assert "rid-header" in str(err)


def test_request_id_falls_back_to_inner_error_when_headers_are_missing() -> None:
    err = error_from_response(404, graph_body("Request_ResourceNotFound", "Resource 'x' does not exist."), {})
    assert isinstance(err, NotFoundError)
    assert err.request_id == "rid-inner" and err.client_request_id == "crid-inner"


def test_lower_case_innererror_key_is_understood() -> None:
    body = {"error": {"code": "x", "message": "m", "innererror": {"request-id": "r1"}}}
    assert error_from_response(400, body, None).request_id == "r1"


def test_our_client_request_id_wins_over_the_echo() -> None:
    err = error_from_response(
        400, graph_body("c", "m"), {}, client_request_id="ours", method="PATCH", url="/u"
    )
    assert err.client_request_id == "ours" and err.method == "PATCH" and err.url == "/u"


def test_fractional_retry_after_is_kept() -> None:
    body = {
        "error": {
            "code": "TooManyRequests",
            "message": "Please retry again later.",
            "innerError": {"code": "429", "request-id": "94fb3b52", "status": "429"},
        }
    }
    err = error_from_response(429, body, httpx.Headers({"Retry-After": "2.128"}))
    assert isinstance(err, ThrottledError)
    assert err.retry_after == pytest.approx(2.128)
    assert err.request_id == "94fb3b52"


def test_retry_after_as_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after(formatdate(now + 7, usegmt=True), now=now) == pytest.approx(7.0)
    assert parse_retry_after(formatdate(now - 7, usegmt=True), now=now) == 0.0


@pytest.mark.parametrize("value", [None, "", "soon", "nan", "-3"])
def test_unusable_retry_after_is_none_or_zero(value: str | None) -> None:
    parsed = parse_retry_after(value)
    assert parsed is None or parsed == 0.0


def test_entra_token_error_shape_becomes_token_error_with_aadsts() -> None:
    body = {
        "error": "invalid_client",
        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: t-1\r\nCorrelation ID: c-1",
        "error_codes": [7000215],
        "trace_id": "t-1",
        "correlation_id": "c-1",
    }
    err = error_from_response(401, json.dumps(body).encode(), {})
    assert isinstance(err, TokenError)
    assert err.code == "invalid_client" and err.aadsts == "AADSTS7000215"
    assert err.message == "AADSTS7000215: Invalid client secret provided."
    assert err.request_id == "t-1"


def test_html_body_from_a_proxy_gives_a_short_plain_message() -> None:
    body = b"<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"
    err = error_from_response(502, body, {})
    assert isinstance(err, GraphUnavailableError)
    assert err.code == "badGateway"
    assert "<" not in err.message and "Bad Gateway" in err.message
    assert err.request_id is None


def test_empty_body_and_no_headers_still_give_a_message() -> None:
    err = error_from_response(503, b"", None)
    assert isinstance(err, GraphUnavailableError)
    assert err.message and err.code == "serviceUnavailable" and err.retry_after is None


def test_json_that_is_not_an_error_object() -> None:
    err = error_from_response(400, b"[1, 2, 3]", {})
    assert isinstance(err, BadRequestError) and err.code == "badRequest"


def test_huge_message_is_truncated() -> None:
    err = error_from_response(400, graph_body("c", "x" * 10_000), {})
    assert len(err.message) <= 500
