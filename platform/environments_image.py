"""Course images for Kubernetes, built by jupyter-repo2docker from the course's lock.

`coursehub env image COURSE` writes a build folder: `context/` (what repo2docker builds: the lock as
requirements.txt, runtime.txt, apt.txt and a postBuild that adds coursehub), the exact build
command, the Dockerfile repo2docker generates for it (`--no-build --debug`, no daemon needed) or,
without repo2docker, a documented minimal Dockerfile of the same lock, and a CI example. The image
is tagged with the lock's hash, so the tag names exactly the packages inside.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .environments import MARKER_FILE, LockInfo, Spec, read_lock

if TYPE_CHECKING:
    from .settings import Settings

#: The repo2docker release coursehub's builds are tested with (run through `uvx` when not installed).
REPO2DOCKER = "jupyter-repo2docker==2026.4.0"
#: repo2docker's default user; z2jh's singleuser.uid defaults to the same.
NB_USER, NB_UID = "jovyan", 1000


@dataclass(frozen=True)
class ImagePlan:
    """What `env image` wrote, and the image reference helm-values should use."""

    course_id: str
    image: str  # registry/name:tag
    folder: Path
    dockerfile: Path
    dockerfile_source: str  # "repo2docker" or "minimal"
    build_command: list[str]


def registry_of(image: str) -> str:
    """'ghcr.io/coursehub/hub:0.1.0' -> 'ghcr.io/coursehub'."""
    name = image.split("@")[0]
    return name.rsplit("/", 1)[0] if "/" in name else ""


def image_ref(course_id: str, lock: LockInfo, registry: str) -> str:
    """`<registry>/coursehub-<course>:<lock hash>`: the tag changes exactly when the lock does."""
    repo = f"coursehub-{course_id}"
    return f"{registry.rstrip('/')}/{repo}:{lock.short}" if registry else f"{repo}:{lock.short}"


def course_image(settings: Settings, course_id: str, registry: str | None = None) -> str | None:
    """The image reference for a course with an environment folder and a lock (None otherwise): what
    `coursehub helm-values` puts in the course's profile and grading Jobs."""
    from .environments import LOCK_FILE, spec_folder

    lock = read_lock(spec_folder(Path(settings.courses_dir) / course_id) / LOCK_FILE)
    if lock is None:
        return None
    return image_ref(course_id, lock, registry if registry is not None else registry_of(settings.kubernetes.hub_image))


#: A registry digest (what `docker inspect --format '{{index .RepoDigests 0}}'` prints after the `@`).
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_repository(ref: str) -> str:
    """'reg:5000/org/img:tag@sha256:..' -> 'reg:5000/org/img' (a port is not a tag)."""
    name = ref.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[0] if ":" in last else name


def pin_digest(ref: str, digests: Mapping[str, str]) -> str:
    """`ref` pinned to the digest the settings give for exactly this reference (`kubernetes.image_digests`),
    as `name:tag@sha256:...` (Kubernetes pulls the digest; the tag stays for people). A digest recorded
    for another tag (an older lock) does not match, so a stale entry can never pin an old environment.
    The value may be the bare digest or `docker inspect`'s `repository@sha256:...` (then of this repository)."""
    given = digests.get(ref)
    if not given:
        return ref
    repo, sep, digest = given.strip().rpartition("@")
    if not DIGEST.match(digest):
        raise ValueError(f"kubernetes.image_digests[{ref!r}]: {given!r} is not a digest (sha256: and 64 hex digits)")
    if sep and repo != image_repository(ref):
        raise ValueError(f"kubernetes.image_digests[{ref!r}]: the digest is of {repo}, not {image_repository(ref)}")
    return f"{ref.split('@', 1)[0]}@{digest}"


def repo2docker_command() -> list[str] | None:
    """repo2docker on PATH, else run from PyPI through uvx (an isolated tool environment), else None."""
    found = shutil.which("repo2docker") or shutil.which("jupyter-repo2docker")
    if found:
        return [found]
    uvx = shutil.which("uvx")
    if uvx is None:
        try:
            from uv import find_uv_bin

            sibling = Path(find_uv_bin()).with_name("uvx")
            uvx = str(sibling) if sibling.exists() else None
        except (ImportError, FileNotFoundError):
            uvx = None
    return [uvx, "--quiet", "--from", REPO2DOCKER, "repo2docker"] if uvx else None


def write_context(spec: Spec, lock: LockInfo, context: Path, coursehub_spec: str) -> None:
    """The folder repo2docker builds: only locked packages, the Python version, and coursehub."""
    if context.exists():
        shutil.rmtree(context)
    context.mkdir(parents=True)
    (context / "requirements.txt").write_bytes(lock.path.read_bytes())  # hashes: pip installs in hash-checking mode
    (context / "runtime.txt").write_text(f"python-{lock.python or spec.python}\n")
    if (spec.folder / "apt.txt").is_file():
        shutil.copyfile(spec.folder / "apt.txt", context / "apt.txt")
    post = ["#!/bin/bash", "# Written by coursehub: adds coursehub (exchange plugin, Assignments panel) to the image.",
            "set -euo pipefail", f"python -m pip install --no-cache-dir --no-deps {shlex.quote(coursehub_spec)}",
            "# the environment's identity, sent with each submission for the grader's parity check:",
            _marker_command(spec, lock)]
    if (spec.folder / "postBuild").is_file():
        shutil.copyfile(spec.folder / "postBuild", context / "postBuild.course")
        os.chmod(context / "postBuild.course", 0o755)
        post += ["# the course's own postBuild:", "./postBuild.course"]
    (context / "postBuild").write_text("\n".join(post) + "\n")
    os.chmod(context / "postBuild", 0o755)


def _marker_command(spec: Spec, lock: LockInfo) -> str:
    """A shell command writing the marker `env build` writes locally into the image's Python prefix,
    so servers in the image report the lock they were built from (`running_environment`)."""
    marker = json.dumps({"course": spec.course_id, "lock_sha256": lock.sha256, "python": lock.python})
    code = f"import pathlib, sys; (pathlib.Path(sys.prefix) / {MARKER_FILE!r}).write_text({marker!r})"
    return f"python -c {shlex.quote(code)}"


def minimal_dockerfile(spec: Spec, lock: LockInfo, coursehub_spec: str) -> str:
    """A Dockerfile of the same lock for when repo2docker is unavailable: `docker build` the folder."""
    apt = (spec.folder / "apt.txt").read_text().split() if (spec.folder / "apt.txt").is_file() else []
    post = "COPY context/postBuild.course /tmp/postBuild\nRUN cd /tmp && ./postBuild && rm postBuild\n" \
        if (spec.folder / "postBuild").is_file() else ""
    return f"""# syntax=docker/dockerfile:1
# Image of course {spec.course_id} from environment/requirements.lock ({lock.short}), written by
# `coursehub env image {spec.course_id}` because repo2docker was not available. Same lock, Python and
# user (jovyan, uid {NB_UID}) as the repo2docker build; build it from this folder:
#   docker build -t <image> .
FROM docker.io/library/python:{lock.python or spec.python}-slim-bookworm
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 SHELL=/bin/bash
RUN apt-get update && apt-get install -y --no-install-recommends git {' '.join(apt)} \\
 && rm -rf /var/lib/apt/lists/*
RUN useradd --create-home --uid {NB_UID} --shell /bin/bash {NB_USER}
COPY context/requirements.txt /tmp/requirements.lock
# Exactly the lock: every package pinned and hash-checked, nothing resolved at build time.
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock && rm /tmp/requirements.lock
RUN pip install --no-cache-dir --no-deps {shlex.quote(coursehub_spec)}
RUN {_marker_command(spec, lock)}
{post}USER {NB_UID}
WORKDIR /home/{NB_USER}
EXPOSE 8888
CMD ["jupyterhub-singleuser"]
"""


def ci_example(course_id: str, image: str) -> str:
    repo = image.rsplit(":", 1)[0]
    return f"""# CI example (GitHub Actions): build course {course_id}'s image with repo2docker when its lock
# changes, and push it. Adapt the registry login to yours; the tag is the lock's hash, so a push
# never overwrites a different environment. Then render the Helm values with the pushed digest.
name: course-image-{course_id}
on:
  push:
    paths: ["courses/{course_id}/environment/**"]
jobs:
  image:
    runs-on: ubuntu-latest
    permissions: {{contents: read, packages: write}}
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with: {{python-version: "3.11"}}
      - run: pip install . uv
      - run: echo "${{{{ secrets.REGISTRY_PASSWORD }}}}" | docker login -u "${{{{ secrets.REGISTRY_USER }}}}" --password-stdin {repo.split('/')[0]}
      - run: coursehub env image {course_id} --registry {repo.rsplit('/', 1)[0] if '/' in repo else '""'} --out build/image-{course_id}
      - run: sh build/image-{course_id}/build.sh --push
      # the pushed digest: record it in the settings (kubernetes.image_digests: {{"{image}": <printed value>}})
      # and render the Helm values again; the profile and the grading Jobs then pull exactly this image
      - run: docker inspect --format '{{{{index .RepoDigests 0}}}}' {image}
"""


def plan(spec: Spec, out: Path, registry: str, *, coursehub_spec: str, use_repo2docker: bool = True) -> ImagePlan:
    """Write the build folder for the spec's current lock; returns what was written."""
    lock = read_lock(spec.lock_path)
    if lock is None:
        raise FileNotFoundError(f"{spec.lock_path}: no lock yet: run `coursehub env lock {spec.course_id}`")
    image = image_ref(spec.course_id, lock, registry)
    out.mkdir(parents=True, exist_ok=True)
    context = out / "context"
    write_context(spec, lock, context, coursehub_spec)
    r2d = repo2docker_command() if use_repo2docker else None
    build = [*(r2d or ["repo2docker"]), "--no-run", "--user-name", NB_USER, "--user-id", str(NB_UID),
             "--image-name", image, str(context)]
    dockerfile, source = out / "Dockerfile", "minimal"
    text = None
    if r2d:
        proc = subprocess.run([*r2d, "--no-build", "--debug", "--image-name", image, str(context)],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode == 0 and "FROM " in proc.stdout:
            text = (f"# Generated by repo2docker (`--no-build --debug`) for {image}; for review and diffs.\n"
                    "# Build with build.sh: repo2docker adds its own scripts to the build context.\n" + proc.stdout)
            source = "repo2docker"
    dockerfile.write_text(text or minimal_dockerfile(spec, lock, coursehub_spec))
    if r2d:  # extra flags (e.g. --push) go before the context folder
        script = f"{shlex.join(build[:-1])} \"$@\" {shlex.quote(str(context))}\n"
    else:
        script = (f"docker build -t {shlex.quote(image)} {shlex.quote(str(out))}\n"
                  f"if [ \"${{1:-}}\" = --push ]; then docker push {shlex.quote(image)}; fi\n")
    (out / "build.sh").write_text("#!/bin/sh\n# Build the course image (--push: and push it). Written by coursehub env image.\n"
                                  "set -eu\n" + script)
    os.chmod(out / "build.sh", 0o755)
    (out / "ci-example.yml").write_text(ci_example(spec.course_id, image))
    (out / "image.json").write_text(json.dumps({
        "course": spec.course_id, "image": image, "lock_sha256": lock.sha256,
        "dockerfile": source, "build_command": build}, indent=2) + "\n")
    return ImagePlan(spec.course_id, image, out, dockerfile, source, build)
