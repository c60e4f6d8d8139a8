"""Every error the API returns is `{"error": "<plain message>", "request_id": "<id>"}` (plus, for
a batch, its per-item results) with a 4xx or 5xx status and an `X-Request-ID` header.

A 4xx message names what the client must change. A 5xx message says what happened in plain words
and never carries an exception's text (an engine's error names tables, settings, internals): that
`detail` is logged with the request id, which is what a client quotes to whoever runs Weir.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import Response

from weir.serving import REQUEST_ID_HEADER, error_body, request_id

log = logging.getLogger(__name__)


class ApiError(Exception):
    """A refusal: `message` goes to the client; `detail` (why, internally) only to the log."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        *,
        detail: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers
        self.detail = detail
        self.extra = extra


def error_response(
    connection: HTTPConnection,
    code: int,
    message: str,
    headers: Mapping[str, str] | None = None,
    detail: str | None = None,
    request: str | None = None,
    **extra: Any,
) -> Response:
    """The error response; `detail`, when given, is logged with the request id."""
    request = request or request_id(connection.headers.get(REQUEST_ID_HEADER))
    if detail is not None:
        log.warning(
            message,
            extra={
                "request_id": request,
                "status": code,
                "detail": detail,
                "path": connection.url.path,
            },
        )
    body = error_body(message, request, **extra)
    return Response(
        body,
        status_code=code,
        media_type="application/json",
        headers={**(headers or {}), REQUEST_ID_HEADER: request},
    )


def api_error_response(connection: HTTPConnection, error: ApiError) -> Response:
    return error_response(
        connection, error.status, error.message, error.headers, error.detail, **error.extra
    )


def unexpected_error_response(connection: HTTPConnection, error: Exception) -> Response:
    """A plain 500 for a bug; the traceback goes to the log with the request id."""
    given = request_id(connection.headers.get(REQUEST_ID_HEADER))
    log.error("unexpected error", exc_info=error, extra={"request_id": given})
    message = "internal error: the request failed, retry later"
    return error_response(connection, 500, message, request=given)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, ApiError)
        return api_error_response(request, error)

    async def on_validation_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        parts = []
        for item in error.errors():
            name = str(item["loc"][-1]) if item["loc"] else "request"
            parts.append(f"{name}: {item['msg'][0].lower()}{item['msg'][1:]}")
        return error_response(request, 400, "; ".join(parts))

    async def on_http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        return error_response(request, error.status_code, str(error.detail), error.headers)

    async def on_unexpected(request: Request, error: Exception) -> Response:
        # Starlette's outermost middleware calls this, then re-raises for the server to log too.
        return unexpected_error_response(request, error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(HTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
