"""The `coursehub` command: one entry point, one small module per subcommand.

Each subcommand module has `add_arguments(parser)` and `run(args) -> int`; heavy imports stay
inside `run` so `coursehub --help` is quick.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

#: name -> (module, one-line help). Add a command by adding a line here.
COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("coursehub.cli", "check the platform settings and course files"),
    "courses": ("coursehub.cli", "list the courses"),
    "up": ("coursehub.platform.up", "run the platform locally (hub, proxy, grading service)"),
    "autograde": ("coursehub.grading.autograde.cli", "autograde an assignment's submissions in parallel, sandboxed"),
    "helm-values": ("coursehub.platform.kube.helm_values", "render the Helm values (z2jh + coursehub) from settings and courses"),
    "capacity": ("coursehub.platform.kube.capacity", "plan nodes, placeholder seats and spawn limits for a semester week"),
    "scale-placeholders": ("coursehub.platform.kube.scaler", "raise or lower the user placeholders for upcoming lectures"),
    "export": ("coursehub.grading.export.cli", "export a course's grades (CSV, Canvas import, xlsx)"),
    "grading-db": ("coursehub.grading.dbcli", "show or upgrade the grading database schema"),
    "textbook": ("coursehub.platform.textbook.cli", "build a course's textbook; print launch links of its pages"),
    "backup": ("coursehub.backup", "copy everything the platform keeps, consistently, while it runs"),
    "restore": ("coursehub.restore", "put a backup back into an empty state folder"),
    "env": ("coursehub.platform.environments_cli", "lock, build and image a course's environment (environment/ folder)"),
    "loadtest": ("coursehub.loadtest.cli", "load-test a running coursehub: lecture start (launches) or deadline (submissions)"),
    "lti": ("coursehub.platform.lti.registration_cli", "LMS platforms: list them; approve or reject dynamic registrations"),
}


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths", nargs="*", type=Path, metavar="PATH",
        help="a settings file, a course.yaml, a course folder or a courses folder (default: the configured ones)",
    )
    p.add_argument("--settings", type=Path, help="platform settings file (default: $COURSEHUB_SETTINGS or built-in)")


def _courses_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="platform settings file")
    p.add_argument("--courses-dir", type=Path, help="folder of courses (default: from the settings)")


def validate(args: argparse.Namespace) -> int:
    from coursehub.platform.courses import load_catalog, load_course
    from coursehub.platform.environments import check_course
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    problems = []
    checked = []
    targets: list[Path] = list(args.paths)
    try:
        settings = load_settings(args.settings)
        checked.append(str(args.settings or "built-in settings"))
    except ConfigError as e:
        problems.extend(e.problems)
        settings = None
    if not targets and settings is not None:
        targets = [settings.courses_dir]
    warnings: list[str] = []
    for path in targets:
        try:
            if path.is_dir() and (path / "course.yaml").is_file():
                folders = [load_course(path).folder]
            elif path.is_dir():
                folders = [c.folder for c in load_catalog(path)]
            elif path.name == "course.yaml":
                folders = [load_course(path.parent).folder]
            else:
                load_settings(path)
                folders = []
            checked.append(str(path))
        except ConfigError as e:
            problems.extend(e.problems)
            folders = []
        for folder in folders:  # the environment folder, its lock and data: (problems, warnings)
            env_problems, env_warnings = check_course(folder)
            problems.extend(env_problems)
            warnings.extend(env_warnings)
    if settings is not None and not problems:  # course mappings against the registered platforms
        from coursehub.platform.lti.services import config_problems

        try:
            problems.extend(config_problems(settings, load_catalog(settings.courses_dir)))
        except ConfigError as e:
            problems.extend(e.problems)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) found", file=sys.stderr)
        return 1
    print("ok: " + ", ".join(checked))
    return 0


def courses(args: argparse.Namespace) -> int:
    from coursehub.platform.courses import load_catalog
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    try:
        settings = load_settings(args.settings)
        catalog = load_catalog(args.courses_dir or settings.courses_dir)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    rows = [("ID", "TITLE", "ASSIGNMENTS", "TEXTBOOK")]
    for c in catalog:
        rows.append((c.id, c.title, ", ".join(a.id for a in c.assignments) or "-", "yes" if c.textbook else "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())
    return 0


_LOCAL = {"validate": (_validate_args, validate), "courses": (_courses_args, courses)}


def _resolve(name: str):
    if name in _LOCAL:
        return _LOCAL[name]
    mod = importlib.import_module(COMMANDS[name][0])
    return mod.add_arguments, mod.run


class _VersionAction(argparse.Action):
    """argparse's "version" action, with the version read only when --version is given."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="show the version and exit", **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from coursehub import __version__

        print(f"coursehub {__version__}")
        parser.exit()


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """All commands are listed; only the `selected` one's module is imported (a broken or slow
    command module never affects the others)."""
    parser = argparse.ArgumentParser(prog="coursehub", description="Course delivery with Jupyter.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        if name == selected:
            add, run = _resolve(name)
            add(p)
            p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    selected = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(selected if selected in COMMANDS else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
