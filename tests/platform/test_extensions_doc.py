"""docs/architecture.md lists the server extensions of ours that user servers load; this keeps the
list equal to what platform/userconfig.py turns on, for students and for staff."""

from __future__ import annotations

import re

from coursehub.paths import SOURCE_ROOT
from coursehub.platform.userconfig import server_app_config


def test_the_documented_user_server_extensions_are_the_ones_turned_on():
    text = (SOURCE_ROOT / "docs" / "architecture.md").read_text()
    documented = set(re.findall(r"^\| [^|]+ \| `(coursehub\.[\w.]+)` \|$", text, re.MULTILINE))
    for staff in (False, True):
        on = {name for name, enabled in server_app_config(staff=staff)["jpserver_extensions"].items()
              if enabled and name.startswith("coursehub.")}
        assert on == documented, (staff, on ^ documented)
