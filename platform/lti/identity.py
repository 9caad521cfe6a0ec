"""Hub usernames from (issuer, subject): stable, never from email or names, never shared.

The name is `<platform>-<hash>`: readable enough to tell where someone came from, derived only
from the LMS's opaque subject id. The identities table makes it collision-free by construction:
a name taken by another (issuer, subject) is never reused; a longer hash is taken instead.
"""

from __future__ import annotations

import base64
import hashlib
import re

_NOT_NAME = re.compile(r"[^a-z0-9]+")


def subject_hash(issuer: str, subject: str) -> str:
    digest = hashlib.sha256(f"{issuer}\n{subject}".encode()).digest()
    return base64.b32encode(digest).decode("ascii").lower().rstrip("=")


def readable_prefix(platform_name: str) -> str:
    prefix = _NOT_NAME.sub("-", platform_name.lower()).strip("-")[:20].strip("-")
    return prefix or "lti"


def username_candidates(platform_name: str, issuer: str, subject: str) -> list[str]:
    """Usernames to try in order: short first, longer hashes if a short one is taken."""
    prefix = readable_prefix(platform_name)
    h = subject_hash(issuer, subject)
    return [f"{prefix}-{h[:n]}" for n in (10, 16, 26, len(h))]
