"""`coursehub env`: lock, build and image a course's environment (docs/instructors/environments.md,
docs/operators/images.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    lock = sub.add_parser("lock", help="resolve environment/ into environment/requirements.lock (pins and hashes, with uv)")
    lock.add_argument("--upgrade", action="store_true", help="take the newest allowed versions instead of keeping the locked ones")
    build = sub.add_parser("build", help="build the course's virtual environment from its lock under the state dir (with uv)")
    build.add_argument("--force", action="store_true", help="rebuild even if an environment for this lock exists")
    build.add_argument("--no-progress", action="store_true", help="no progress bar")
    image = sub.add_parser("image", help="write the repo2docker build (context, command, Dockerfile, CI example) of the course image")
    image.add_argument("--registry", help="image registry and namespace, e.g. registry.example.edu/courses "
                                          "(default: that of kubernetes.hub_image in the settings)")
    image.add_argument("--out", type=Path, help="output folder (default: <state dir>/images/COURSE-LOCKHASH)")
    image.add_argument("--coursehub-spec", help="what pip installs as coursehub in the image (default: coursehub==VERSION)")
    image.add_argument("--no-repo2docker", action="store_true",
                       help="write coursehub's minimal Dockerfile instead of asking repo2docker for its own")
    python = sub.add_parser("python", help="print the python of the course's built environment (nothing for the default one)")
    for s in (lock, build, image, python):
        s.add_argument("course", metavar="COURSE", help="course id, e.g. demo-101")
        s.add_argument("--settings", type=Path, help="platform settings file")


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from coursehub import __version__
    from coursehub.platform import environments as envs
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    from .environments_build import EnvBuildError

    try:
        settings = load_settings(args.settings)
        folder = Path(settings.courses_dir) / args.course
        if not (folder / "course.yaml").is_file():
            print(f"error: no course {args.course!r} in {settings.courses_dir}", file=sys.stderr)
            return 1
        if args.action == "python":
            python = envs.course_python(settings, args.course)
            if python:
                print(python)
            return 0
        spec = envs.load_spec(folder)
        if spec is None:
            print(f"error: {folder / envs.SPEC_DIR} not found: course {args.course!r} uses the default environment "
                  "(see docs/instructors/environments.md to give it its own)", file=sys.stderr)
            return 1
        if args.action == "lock":
            from .environments_build import lock, pinned_packages

            info = lock(spec, upgrade=args.upgrade)
            print(f"locked {len(pinned_packages(info.path))} packages for Python {info.python} in {info.path} "
                  f"(lock {info.short})")
        elif args.action == "build":
            from .environments_build import build

            target = build(spec, Path(settings.state_dir), force=args.force, progress=not args.no_progress, warn=_warn)
            print(f"{target / 'bin' / 'python'}")
        else:
            from .environments_image import plan, registry_of

            lock_info = envs.read_lock(spec.lock_path)
            if lock_info is None:
                raise ConfigError(envs.lock_status(spec)[0])
            for p in envs.lock_status(spec)[0]:
                _warn(str(p))
            registry = args.registry if args.registry is not None else registry_of(settings.kubernetes.hub_image)
            out = args.out or Path(settings.state_dir) / "images" / envs.env_name(spec.course_id, lock_info)
            result = plan(spec, out, registry, coursehub_spec=args.coursehub_spec or f"coursehub=={__version__}",
                          use_repo2docker=not args.no_repo2docker)
            print(f"build folder: {result.folder}  (Dockerfile from {result.dockerfile_source})", file=sys.stderr)
            print(f"build with:   sh {result.folder / 'build.sh'} [--push]", file=sys.stderr)
            print(result.image)
        return 0
    except ConfigError as e:
        for p in e.problems:
            print(f"error: {p}", file=sys.stderr)
        return 1
    except (EnvBuildError, envs.EnvironmentNotBuilt) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
