"""`coursehub textbook ...`: build a course's textbook, print a page's launch link."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    build = sub.add_parser("build", help="build a course's textbook to HTML (what the platform serves)")
    build.add_argument("course", metavar="COURSE", help="course id, e.g. demo-101")
    build.add_argument("--out", type=Path, help="output folder (default: <state dir>/textbooks/COURSE)")
    build.add_argument("--force", action="store_true", help="build even if the book is up to date")
    build.add_argument("--settings", type=Path, help="platform settings file")
    url = sub.add_parser("url", help="print the launch link of a textbook page (for LMS resource links)")
    url.add_argument("course", metavar="COURSE", help="course id, e.g. demo-101")
    url.add_argument("page", metavar="PAGE", help="page file, e.g. 02-lists.ipynb")
    url.add_argument("--settings", type=Path, help="platform settings file")


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.courses import load_catalog
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    from .build import BuildFailed, build_textbook
    from .links import PageNotFound, launch_url

    try:
        settings = load_settings(args.settings)
        course = load_catalog(settings.courses_dir).get(args.course)
        if course is None:
            print(f"error: no course {args.course!r} in {settings.courses_dir}", file=sys.stderr)
            return 1
        if args.action == "url":
            print(settings.public_url() + launch_url(course, args.page, settings))
            return 0
        result = build_textbook(course, settings, args.out, force=args.force,
                                progress=lambda line: print(line, flush=True))
    except (ConfigError, PageNotFound) as e:
        for line in str(e).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1
    except BuildFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if not result.built:
        print("(use --force to build anyway)")
    return 0
