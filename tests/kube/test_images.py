"""The Dockerfiles parse (no docker engine here: they are not built in tests): base images come
from pinned build args, versions agree with the chart and pyproject, COPY sources exist, and the
images end as a non-root user."""

from __future__ import annotations

import fnmatch
import re
import tomllib

import pytest
from packaging.requirements import Requirement

from .conftest import REPO

DOCKERFILES = {
    "hub": REPO / "platform/images/hub/Dockerfile",
    "user": REPO / "platform/images/user/Dockerfile",
    "grader": REPO / "grading/images/grader/Dockerfile",
}


def instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, f"{path}: dangling line continuation"
    return out


def stages(path):
    """Global ARG defaults, the FROM reference with them substituted, and the per-stage ARGs."""
    ins = instructions(path)
    global_args, stage_args = {}, {}
    from_ref = None
    for word, rest in ins:
        if word == "ARG":
            name, _, default = rest.partition("=")
            (stage_args if from_ref else global_args)[name] = default.strip('"')
        elif word == "FROM":
            assert from_ref is None, "one stage expected"
            from_ref = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], rest)
    return ins, global_args, stage_args, from_ref


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_parses_and_is_pinned(name):
    ins, global_args, stage_args, from_ref = stages(DOCKERFILES[name])
    assert ins[0][0] in ("ARG", "FROM")
    assert from_ref and ":" in from_ref.rsplit("/", 1)[-1], f"FROM {from_ref} has no tag"
    for arg, default in {**global_args, **stage_args}.items():
        assert default and default != "latest", f"build arg {arg} must pin a version"
    used = set()
    for word, rest in ins:
        if word in ("RUN", "LABEL", "ENV", "COPY", "WORKDIR", "USER"):
            used |= set(re.findall(r"\$\{(\w+)\}", rest))
    undeclared = used - set(stage_args) - {"NB_UID", "NB_USER"}  # the Docker Stacks base sets these
    assert not undeclared, f"{name}: {undeclared} used after FROM but not declared there (ARG)"
    users = [rest for word, rest in ins if word == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"


def test_hub_image_is_z2jh_4_4_0_with_its_jupyterhub():
    _, _, stage_args, from_ref = stages(DOCKERFILES["hub"])
    assert from_ref == "quay.io/jupyterhub/k8s-hub:4.4.0"
    assert stage_args["JUPYTERHUB_VERSION"].startswith("5.5.")  # z2jh 4.4.0 ships JupyterHub 5.5
    _, _, user_args, _ = stages(DOCKERFILES["user"])
    assert user_args["JUPYTERHUB_VERSION"] == stage_args["JUPYTERHUB_VERSION"]


def test_pins_satisfy_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    reqs = {Requirement(d).name: Requirement(d) for d in deps}
    arg_to_package = {"JUPYTERHUB_VERSION": "jupyterhub", "NBGRADER_VERSION": "nbgrader",
                      "NBGITPULLER_VERSION": "nbgitpuller", "KUBESPAWNER_VERSION": "jupyterhub-kubespawner",
                      "LTIAUTHENTICATOR_VERSION": "jupyterhub-ltiauthenticator", "OAUTHENTICATOR_VERSION": "oauthenticator"}
    for path in DOCKERFILES.values():
        _, _, stage_args, _ = stages(path)
        for arg, package in arg_to_package.items():
            if arg in stage_args:
                assert reqs[package].specifier.contains(stage_args[arg]), f"{path.name}: {arg} outside {reqs[package]}"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_copy_sources_exist_and_are_in_the_build_context(name):
    path = DOCKERFILES[name]
    ignore = (path.parent / "Dockerfile.dockerignore").read_text().splitlines()
    patterns = [p for p in ignore if p and not p.startswith("#")]

    def sent(rel: str) -> bool:
        top = rel.split("/")[0]
        included = True
        for p in patterns:
            neg = p.startswith("!")
            pat = p[1:] if neg else p
            if fnmatch.fnmatch(rel, pat) or fnmatch.fnmatch(top, pat):
                included = neg
        return included

    for word, rest in instructions(path):
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _dest = rest.split()
        for src in sources:
            matches = list(REPO.glob(src))
            if "*" in src and not matches:
                continue  # optional (README*)
            assert matches, f"{name}: COPY source {src} does not exist"
            assert sent(src), f"{name}: COPY source {src} is excluded by Dockerfile.dockerignore"


def test_parser_catches_a_broken_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text("ARG BASE=img\nFROM ${BASE}\nRUN echo ${UNDECLARED}\nUSER root\n")
    with pytest.raises(AssertionError):
        DOCKERFILES["x"] = broken
        try:
            test_dockerfile_parses_and_is_pinned("x")
        finally:
            del DOCKERFILES["x"]


def test_hub_image_ships_the_tested_kubespawner():
    from importlib.metadata import version

    _, _, stage_args, _ = stages(DOCKERFILES["hub"])
    assert stage_args["KUBESPAWNER_VERSION"] == version("jupyterhub-kubespawner")
