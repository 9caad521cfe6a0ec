"""Textbook maths in a real browser: MathJax (served from the book, no network) typesets the formula
with the fonts the book ships, and no request fails (no font 404s, no MathJax error banner)."""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


def test_math_typesets_with_the_books_own_fonts_and_nothing_fails(book, page):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(book.html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.on("requestfailed", lambda r: failed.append(f"failed {r.url}") if r.url.startswith("http") else None)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/01-welcome.html"
        page.goto(url)
        page.wait_for_function("() => window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 "
                               "&& document.querySelector('.MathJax, .MathJax_Display, .MathJax_SVG')")
        page.wait_for_load_state("networkidle")  # the web fonts MathJax asked for have arrived (or failed)
        rendered = page.evaluate("() => document.querySelectorAll('.MathJax, .MathJax_Display').length")
        assert rendered >= 1
        # MathJax's own message box ("Loading web-font ...", "Math Processing Error") is gone or empty
        message = page.evaluate("() => { const m = document.getElementById('MathJax_Message');"
                                " return m && m.style.display !== 'none' ? m.innerText : ''; }")
        assert message.strip() == "", message
        assert "Math Processing Error" not in page.inner_text("body")
        assert failed == [], failed
        assert all(u.startswith("http://127.0.0.1:") for u in page.evaluate(
            "() => performance.getEntriesByType('resource').map(e => e.name)")), "the page reached the network"
    finally:
        server.shutdown()
        server.server_close()
