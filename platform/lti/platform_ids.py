"""The LMS's own user id, beside the LTI `sub`: Canvas's gradebook import matches students by its
numeric user id, which a launch carries only when the tool asks for it (the custom field
`canvas_user_id=$Canvas.user.id` of the tool configuration, `tool_config.py`).

An LMS that does not know the variable sends the text `$Canvas.user.id` unchanged, and custom
parameters are whatever the LMS's admins typed: only a plain number is taken.
"""

from __future__ import annotations

import re

#: The custom parameter, and the Canvas variable it is filled from.
CANVAS_USER_ID = "canvas_user_id"
CANVAS_USER_ID_VARIABLE = "$Canvas.user.id"
_NUMBER = re.compile(r"[0-9]{1,20}")


def canvas_user_id(custom: object) -> str | None:
    """Canvas's numeric user id from a launch's custom claim, or None (absent, unsubstituted, junk)."""
    if not isinstance(custom, dict):
        return None
    value = custom.get(CANVAS_USER_ID)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        value = str(value)
    return value if isinstance(value, str) and _NUMBER.fullmatch(value) else None
