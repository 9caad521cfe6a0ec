"""A small async HTTP client (tornado) with timeouts; responses are data, never exceptions."""

from __future__ import annotations

from dataclasses import dataclass

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


@dataclass
class Response:
    status: int  # 599: no response (connection refused, timeout)
    headers: dict[str, str]
    body: bytes
    error: str = ""

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lname), None)

    def header_all(self, name: str) -> list[str]:
        lname = name.lower()
        return [v for k, v in self.headers.items() if k.lower() == lname]


class Http:
    """`await http.request(method, url, headers=..., body=...)`; count calls in tests by subclassing."""

    def __init__(self, connect_timeout: float = 10.0, request_timeout: float = 30.0):
        self.connect_timeout = connect_timeout
        self.request_timeout = request_timeout

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: bytes | str | None = None) -> Response:
        req = HTTPRequest(url, method=method, headers=headers or {}, body=body,
                          connect_timeout=self.connect_timeout, request_timeout=self.request_timeout,
                          follow_redirects=False, allow_nonstandard_methods=True)
        try:
            resp = await AsyncHTTPClient().fetch(req, raise_error=False)
        except HTTPClientError as e:  # pragma: no cover - raise_error=False keeps these as responses
            return Response(e.code, {}, b"", str(e))
        except OSError as e:
            return Response(599, {}, b"", f"{type(e).__name__}: {e}")
        headers: dict[str, str] = {}
        for k, v in resp.headers.get_all():
            headers[k] = f"{headers[k]}, {v}" if k in headers and k.lower() == "link" else v
        error = str(resp.error) if resp.code == 599 and resp.error else ""
        return Response(resp.code, headers, resp.body or b"", error)
