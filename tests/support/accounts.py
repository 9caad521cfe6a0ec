"""Unix accounts made by tests (`coursehub up` as root, isolation tests): a throwaway prefix and the
clean-up that removes every user and group carrying it, so no run leaves accounts behind."""

from __future__ import annotations

import grp
import pwd
import re
import secrets
import subprocess


def random_prefix() -> str:
    """A prefix of this test's own (`cht<hex>-`), so parallel runs never remove each other's accounts."""
    return f"cht{secrets.token_hex(3)}-"


def remove_accounts(prefix: str) -> None:
    """Delete every user, then every group, whose name starts with `prefix` (a test prefix only)."""
    if not re.fullmatch(r"cht[a-z0-9]*-", prefix):
        raise ValueError(f"refusing to remove accounts of a non-test prefix {prefix!r}")
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(prefix):
            subprocess.run(["userdel", entry.pw_name], capture_output=True)
    for g in grp.getgrall():
        if g.gr_name.startswith(prefix):
            subprocess.run(["groupdel", g.gr_name], capture_output=True)
