"""`coursehub grading-db`: see and upgrade the grading database schema (all branches).

    coursehub grading-db current [--settings FILE]
    coursehub grading-db upgrade [--settings FILE]

Back the database up before upgrading. The grading service refuses to start until this has run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["current", "upgrade"], help="show the schema revision, or upgrade it")
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS or built-in)")


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    from .db import make_engine, redact, schema_status, upgrade

    try:
        settings = load_settings(args.settings)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    url = settings.grading_db_url()
    engine = make_engine(url)
    try:
        status = schema_status(engine)
        current = ", ".join(sorted(status.current)) or "empty"
        expected = ", ".join(sorted(status.expected))
        if args.action == "current":
            state = "up to date" if status.up_to_date else "needs `coursehub grading-db upgrade`"
            print(f"{redact(url)}: at {current}; this coursehub needs {expected} ({state})")
            return 0 if status.up_to_date else 3
        if status.up_to_date:
            print(f"{redact(url)}: already at {expected}")
            return 0
        upgrade(url, engine)
        print(f"{redact(url)}: upgraded from {current} to {expected}")
        return 0
    finally:
        engine.dispose()
