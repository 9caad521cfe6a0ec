"""The LMS clients' HTTP calls: the shared client (`coursehub.platform.httpclient`) with the
service side's timeouts; responses are data, never exceptions (a body over the cap included)."""

from __future__ import annotations

from coursehub.platform.httpclient import MAX_BYTES, NO_RESPONSE, Response, ResponseTooLarge, request

__all__ = ["Http", "Response"]


class Http:
    """`await http.request(method, url, headers=..., body=...)`; count calls in tests by subclassing."""

    def __init__(self, connect_timeout: float = 10.0, request_timeout: float = 30.0, max_bytes: int = MAX_BYTES):
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout
        self.max_bytes = max_bytes

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | str | None = None) -> Response:
        try:
            return await request(method, url, headers=headers, body=body, connect_timeout=self.connect_timeout,
                                 request_timeout=self.request_timeout, max_bytes=self.max_bytes)
        except ResponseTooLarge as e:
            return Response(NO_RESPONSE, {}, b"", str(e))
