"""The standalone formgrader's file links, relative to the user's server.

nbgrader's formgrader (its `utils.js`, `linkTo`) points assignment and Preview links at
`/tree/...`, `/notebooks/...` and `/edit/...` from the site root. That is right for a server at
`/`, but behind JupyterHub the server lives at `/user/<name>/`, so the links reached the hub and
404'd. We serve nbgrader's own `utils.js` followed by a few lines that put the server's base URL
(the formgrader pages define `base_url`) in front of those links. Inside Lab (an iframe) the
formgrader opens files through Lab's commands and is left alone.

This route is registered before nbgrader's formgrader routes (extensions load in name order,
`coursehub.*` before `nbgrader.*`), so it wins over nbgrader's static handler for that one file.
"""

from __future__ import annotations

import os

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

PREFIX_LINKS = """
// coursehub: links relative to this server, not the site root (behind JupyterHub the server
// is at /user/<name>/). See coursehub.grading.exchange.formgrader_links.
linkTo = (function (stockLinkTo) {
    return function (type, path) {
        var make = stockLinkTo(type, path);
        return function (i, el) {
            var link = make(i, el);
            var href = link.getAttribute("href");
            if (window === window.top && href && href.charAt(0) === "/" && typeof base_url === "string") {
                link.setAttribute("href", base_url + href);
            }
            return link;
        };
    };
})(linkTo);
"""


def stock_utils_js() -> str:
    import nbgrader.server_extensions.formgrader.handlers as fg

    with open(os.path.join(fg.static_path, "js", "utils.js"), encoding="utf-8") as fh:
        return fh.read()


class UtilsJsHandler(JupyterHandler):
    """nbgrader's utils.js plus the link fix."""

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.finish(stock_utils_js() + PREFIX_LINKS)


def handlers(base_url: str) -> list[tuple[str, type]]:
    return [(url_path_join(base_url, "formgrader/static/js/utils.js"), UtilsJsHandler)]
