"""A fake LTI 1.3 platform (LMS) for tests: see `tests/fakelms/server.py`."""

from .server import FakeLms, LaunchSpec, running_fake_lms

__all__ = ["FakeLms", "LaunchSpec", "running_fake_lms"]
