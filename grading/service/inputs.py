"""Bounds on what clients send, checked before the standard parsers see it.

Valid JSON can still break a parser: 100,000 nested brackets exhaust the recursion limit, a
5,000-digit number exceeds Python's int conversion limit, `NaN` is accepted by `json` but is not
JSON. Each of those is the client's mistake, so it must come back as a clear 4xx, never a 500.
`check_json_text` parses with bounds (no regular-expression pre-scan: those go quadratic on
hostile input) before nbformat's validator sees the document.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import ServiceError

#: Deepest nesting accepted in a notebook or a request body (nbformat needs about 6).
MAX_DEPTH = 64
#: Longest run of digits in a JSON number (a float64 needs 17, an int64 19).
MAX_DIGITS = 40
#: nbformat 4 minor versions we accept (4.0 ... 4.99).
MAX_MINOR = 99
#: Longest id, timestamp or other short value accepted in a query string or header.
MAX_PARAM = 256

_INT = re.compile(r"[0-9]{1,18}")


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_DIGITS:
        raise ValueError(f"a number with more than {MAX_DIGITS} digits")
    return int(text)


def _bounded_float(text: str) -> float:
    if sum(c.isdigit() for c in text) > MAX_DIGITS:
        raise ValueError(f"a number with more than {MAX_DIGITS} digits")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:20]} is out of range")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth(value: Any) -> int:
    """Nesting depth of parsed JSON, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break
            stack.extend((child, level + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def check_json_text(what: str, content: bytes) -> Any:
    """Parse `content` as JSON within the bounds above; a ServiceError(422) names what is wrong.

    The standard parser does the scanning (linear, in C): numbers go through bounded hooks instead
    of Python's int conversion, and nesting beyond the interpreter's recursion limit stops it with
    a RecursionError, which is the client's error like any other; shallower nesting is measured
    on the result."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        raise ServiceError(422, f"{what} is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float,
                           parse_constant=_refuse_constant)
    except RecursionError:
        raise ServiceError(422, f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as e:
        raise ServiceError(422, f"{what} is not valid JSON: {str(e)[:200]}") from None
    if _depth(value) > MAX_DEPTH:
        raise ServiceError(422, f"{what} is nested more than {MAX_DEPTH} levels deep")
    return value


def check_notebook(name: str, content: bytes) -> dict:
    """The shape nbformat's validator relies on, checked before it runs (it raises, not refuses,
    on some wrong types, and caches one validator per minor version). Returns the parsed notebook."""
    what = bounded(name, 120)
    nb = check_json_text(what, content)
    if not isinstance(nb, dict):
        raise ServiceError(422, f"{what} is not a notebook: the top level must be a JSON object")
    major, minor = nb.get("nbformat"), nb.get("nbformat_minor")
    if type(major) is not int or major != 4:
        raise ServiceError(422, f"{what} is not a version 4 notebook (nbformat must be the number 4)")
    if type(minor) is not int or not 0 <= minor <= MAX_MINOR:
        raise ServiceError(422, f"{what} has an invalid nbformat_minor (a whole number from 0 to {MAX_MINOR})")
    for key, kind, label in (("cells", list, "a list"), ("metadata", dict, "an object")):
        if not isinstance(nb.get(key), kind):
            raise ServiceError(422, f"{what} is not a valid notebook: {key!r} must be {label}")
    return nb


def parse_body(content: bytes, what: str = "the request body") -> Any:
    """A JSON request body (small API bodies, not uploads)."""
    return check_json_text(what, content or b"{}")


def bounded(value: object, limit: int = MAX_PARAM) -> str:
    """`value` as text for a message or a log line, cut to `limit` characters."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def short_param(value: str | None, name: str, limit: int = MAX_PARAM) -> str | None:
    """A query or header value that must be short printable ASCII (ids, timestamps, secrets)."""
    if value is None:
        return None
    if len(value) > limit or not value.isascii() or not value.isprintable():
        raise ServiceError(400, f"{name} must be printable ASCII of at most {limit} characters")
    return value


def int_param(value: object, name: str) -> int:
    """A non-negative integer id from a query, form or JSON body (at most 18 digits)."""
    if type(value) is int and 0 <= value < 10**18:
        return value
    if isinstance(value, str) and _INT.fullmatch(value):
        return int(value)
    raise ServiceError(400, f"{name} must be a whole number id")
