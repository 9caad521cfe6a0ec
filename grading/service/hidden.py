"""Hidden tests stay hidden in released feedback (nbgrader#1363).

nbgrader's feedback is HTML rendered from the *autograded* notebook, where autograde has put the
hidden tests back; the exchange stores only that HTML. So the hidden regions, delimited as nbgrader's
`ClearHiddenTests` defines them, are removed from the HTML's code blocks: each line of a region loses
its text but keeps its tags (the markup stays balanced), and lines of a traceback that quote a
removed line are dropped too, so a failing hidden test does not show its source in the error.
"""

from __future__ import annotations

import html
import re

_PRE = re.compile(r"(<pre\b[^>]*>)(.*?)(</pre>)", re.S | re.I)
_TAG = re.compile(r"<[^>]*>")
#: A removed line shorter than this is too common ("pass", ")") to hunt for in tracebacks.
MIN_QUOTED = 6


def delimiters() -> tuple[str, str]:
    """nbgrader's own markers (its ClearHiddenTests defaults): '### BEGIN HIDDEN TESTS' contains them."""
    from nbgrader.preprocessors import ClearHiddenTests

    pre = ClearHiddenTests()
    return pre.begin_test_delimeter, pre.end_test_delimeter


def _text(fragment: str) -> str:
    return html.unescape(_TAG.sub("", fragment))


def _strip_block(body: str, begin: str, end: str, removed: list[str]) -> str:
    out: list[str] = []
    in_region = False
    for line in body.split("\n"):
        text = _text(line)
        if begin in text:
            in_region = True
        if in_region:
            if begin not in text and end not in text and text.strip():
                removed.append(text.strip())
            tags = "".join(_TAG.findall(line))  # keep the markup balanced, drop the words
            if out:
                out[-1] += tags
            else:
                out.append(tags)
            if end in text:
                in_region = False
            continue
        out.append(line)
    return "\n".join(out)


def strip_hidden_tests(page: str) -> tuple[str, int]:
    """The feedback page without hidden test regions; and how many source lines were removed."""
    begin, end = delimiters()
    removed: list[str] = []

    def code(m: re.Match) -> str:
        return m.group(1) + _strip_block(m.group(2), begin, end, removed) + m.group(3)

    page = _PRE.sub(code, page)
    quoted = {r for r in removed if len(r) >= MIN_QUOTED}
    if quoted:
        def traceback(m: re.Match) -> str:
            if "highlight" in m.string[max(0, m.start() - 80):m.start()]:
                return m.group(0)  # a code cell's input: already stripped above
            lines = m.group(2).split("\n")
            kept = [ln for ln in lines if not any(q in _text(ln) for q in quoted)]
            if len(kept) == len(lines):
                return m.group(0)
            return m.group(1) + "\n".join(kept) + m.group(3)

        page = _PRE.sub(traceback, page)
    return page, len(removed)


def strip_feedback_files(files: dict[str, bytes]) -> dict[str, bytes]:
    """`strip_hidden_tests` on each `<notebook>.html` of a feedback release."""
    out = {}
    for name, content in files.items():
        page, n = strip_hidden_tests(content.decode("utf-8", errors="replace"))
        out[name] = page.encode("utf-8") if n else content
    return out
