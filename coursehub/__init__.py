"""coursehub: course delivery with Jupyter at university scale."""

from .deferred import defer_slow_imports

defer_slow_imports()


def __getattr__(name: str) -> str:
    """`coursehub.__version__`, read from the installed metadata on first use: importing
    importlib.metadata costs ~60 ms of CPU, and every coursehub process (hub, user server,
    autograder, export) imports this package first while few ask for the version."""
    if name != "__version__":
        raise AttributeError(f"module 'coursehub' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        value = version("coursehub")
    except PackageNotFoundError:  # running from a source tree that is not installed
        value = "0.0.0"
    globals()["__version__"] = value
    return value
