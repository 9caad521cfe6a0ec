"""coursehub: course delivery with Jupyter at university scale."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("coursehub")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

from .deferred import defer_slow_imports  # noqa: E402 - after the version, before anything heavy

defer_slow_imports()
