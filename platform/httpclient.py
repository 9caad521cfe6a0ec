"""The one async HTTP client of the hub and the grading service (tornado underneath).

Every outgoing call has a connect and a request timeout and a cap on the body it reads, so a slow
or hostile server can neither hang a launch nor fill the process's memory; redirects are not
followed unless the caller asks. Answers are data (`Response`, status 599 when there was no
answer: refused, reset, timed out); only a body over the cap raises (`ResponseTooLarge`), since
the caller must not act on a truncated document. URL policies (the LTI registration's SSRF
guard, the LMS clients' host check) stay with their callers, who check before calling `request`.

It lives in `platform` (the lower layer) so that `grading` may use it too (see .importlinter).
"""

from __future__ import annotations

from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import HTTPInputError

#: Default cap on a response body: far above any JSON document the services exchange.
MAX_BYTES = 16 * 1024 * 1024
NO_RESPONSE = 599


class ResponseTooLarge(HTTPInputError):
    """The server sent more than the caller's cap; the partial body is dropped. (An HTTPInputError
    so that tornado ends the connection quietly instead of logging it as an uncaught exception.)"""

    def __init__(self, url: str, max_bytes: int):
        super().__init__(f"the response from {url} is larger than {max_bytes} bytes")
        self.url = url
        self.max_bytes = max_bytes


@dataclass
class Response:
    status: int  # 599: no response (connection refused, timeout)
    headers: dict[str, str]
    body: bytes
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lname), None)

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers.items() if k.lower() == lname]


async def request(method: str, url: str, *, headers: dict[str, str] | None = None,
                  body: bytes | str | None = None, connect_timeout: float = 10.0,
                  request_timeout: float = 30.0, max_bytes: int = MAX_BYTES,
                  follow_redirects: bool = False) -> Response:
    """One HTTP call: the answer whatever its status, or status 599 with `error` when none came.

    Raises ResponseTooLarge when the body exceeds `max_bytes` (checked while it streams in)."""
    chunks: list[bytes] = []
    received = 0
    too_large = ResponseTooLarge(url, max_bytes)

    def collect(chunk: bytes) -> None:
        nonlocal received
        received += len(chunk)
        if received > max_bytes:
            raise too_large  # ends the download; reported below however tornado wraps it
        chunks.append(chunk)

    req = HTTPRequest(url, method=method, headers=headers or {}, body=body,
                      connect_timeout=connect_timeout, request_timeout=request_timeout,
                      follow_redirects=follow_redirects, allow_nonstandard_methods=True,
                      streaming_callback=collect)
    try:
        resp = await AsyncHTTPClient().fetch(req, raise_error=False)
    except ResponseTooLarge:
        raise
    except HTTPClientError as e:  # tornado raises timeouts (599) even with raise_error=False
        if received > max_bytes:
            raise too_large from None
        return Response(e.code, {}, b"", f"{type(e).__name__}: {e}")
    except OSError as e:
        if received > max_bytes:
            raise too_large from None
        return Response(NO_RESPONSE, {}, b"", f"{type(e).__name__}: {e}")
    if received > max_bytes:
        raise too_large
    merged: dict[str, str] = {}
    for k, v in resp.headers.get_all():
        merged[k] = f"{merged[k]}, {v}" if k in merged and k.lower() == "link" else v
    error = str(resp.error) if resp.code == NO_RESPONSE and resp.error else ""
    return Response(resp.code, merged, b"".join(chunks), error)
