"""Sphinx extension used by the textbook build: a "launch" link on every page that has one.

The build computes each page's launch URL (`coursehub_launch_urls`, {docname: url}); this
extension only places it: a visible link at the top of the page and a button in the book theme's
header. Keeping the URL logic in `links.py` means the book and LMS links always agree.
"""

from __future__ import annotations

from html import escape
from typing import Any

LINK_TEXT = "Open as a live notebook"


def launch_link_html(url: str) -> str:
    return (
        '<div class="coursehub-launch admonition tip">'
        f'<a class="coursehub-launch-link" href="{escape(url, quote=True)}" '
        'title="Open this page in your own Jupyter server, where you can run and change it">'
        f'&#x25B6; {LINK_TEXT}</a>'
        "<span> &mdash; run and change this page in your own Jupyter server; your edits are kept "
        "when the book is updated.</span></div>\n"
    )


def add_launch_link(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    url = app.config.coursehub_launch_urls.get(pagename)
    if not url:
        return
    if "body" in context:
        context["body"] = launch_link_html(url) + context["body"]
    buttons = context.get("header_buttons")
    if isinstance(buttons, list):
        buttons.append({
            "type": "link", "text": "Launch", "tooltip": LINK_TEXT, "icon": "fas fa-rocket",
            "url": url, "label": "coursehub-launch-button",
        })


def setup(app: Any) -> dict:
    app.add_config_value("coursehub_launch_urls", {}, "html")
    # After the book theme has prepared its header buttons (priority 500).
    app.connect("html-page-context", add_launch_link, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
