"""Fixtures for the offline Kubernetes tests: a dummy kubeconfig, course catalogs, and a helper
that validates objects against the Kubernetes schema of the chart's minimum version."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from coursehub.platform.courses import Catalog, Course, load_catalog

REPO = Path(__file__).resolve().parents[2]
#: The Kubernetes schema the rendered objects are validated against (kubernetes-validate ships
#: schemas from 1.25 up; the chart installs on 1.28+, z2jh 4.4.0's minimum).
MIN_KUBE_VERSION = "1.32.0"
Z2JH_DIR = REPO.parent / "shared" / "z2jh"


def k8s_validate(obj: dict) -> None:
    """Strict validation (unknown fields fail); a kind without a schema is a failure too."""
    kubernetes_validate.validate(obj, MIN_KUBE_VERSION, strict=True)


def to_manifest(obj):
    """A kubernetes(_asyncio) model object as the JSON the API server would get (camelCase keys,
    no None fields): what both clients' `sanitize_for_serialization` do, for either model family."""
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    if isinstance(obj, list | tuple):
        return [to_manifest(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_manifest(v) for k, v in obj.items()}
    if hasattr(obj, "openapi_types"):
        return {obj.attribute_map[a]: to_manifest(getattr(obj, a))
                for a in obj.openapi_types if getattr(obj, a) is not None}
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    raise TypeError(f"cannot serialize {type(obj).__name__}")


@pytest.fixture
def kubeconfig(tmp_path, monkeypatch):
    """KubeSpawner parses a kubeconfig in __init__ even with _mock=True; it never connects.

    kubernetes_asyncio reads $KUBECONFIG at import time, so its module default is patched too.
    """
    from kubernetes_asyncio.config import kube_config

    cfg = tmp_path / "kubeconfig"
    cfg.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        clusters: [{name: dummy, cluster: {server: "https://127.0.0.1:1"}}]
        users: [{name: dummy, user: {token: not-a-real-token}}]
        contexts: [{name: dummy, context: {cluster: dummy, user: dummy, namespace: coursehub}}]
        current-context: dummy
    """))
    monkeypatch.setenv("KUBECONFIG", str(cfg))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(cfg))
    return cfg


def write_course(root: Path, course_id: str, **fields) -> Path:
    folder = root / course_id
    folder.mkdir(parents=True)
    data = {"id": course_id, "title": f"Course {course_id}", **fields}
    (folder / "course.yaml").write_text(yaml.safe_dump(data))
    return folder


@pytest.fixture
def demo_catalog() -> Catalog:
    return load_catalog(REPO / "courses")


@pytest.fixture
def two_courses(tmp_path) -> Catalog:
    """A big lecture course and a small GPU-free ML seminar with a heavier environment."""
    root = tmp_path / "courses"
    write_course(
        root, "stats-200", enrollment=400,
        environment={"image": "registry.example.edu/stats:2026.1", "cpu_guarantee": 0.5, "cpu_limit": 2,
                     "mem_guarantee": "1Gi", "mem_limit": "2Gi", "storage": "2Gi", "env": {"COURSE": "stats"}},
        schedule=[{"days": ["tue", "thu"], "start": "09:00", "minutes": 90, "attendance": 0.75}],
    )
    write_course(
        root, "ml-300", enrollment=60,
        environment={"image": "registry.example.edu/ml:2026.1", "cpu_guarantee": 1, "cpu_limit": 4,
                     "mem_guarantee": "4Gi", "mem_limit": "8Gi", "storage": "10Gi"},
        schedule=[{"days": ["thu"], "start": "09:00", "minutes": 120, "attendance": 0.5}],
    )
    return load_catalog(root)


def course(catalog: Catalog, course_id: str) -> Course:
    found = catalog.get(course_id)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def z2jh():
    """(schema, default values) of the z2jh 4.4.0 chart, from ../shared/z2jh."""
    if not (Z2JH_DIR / "values.schema.yaml").is_file():
        pytest.skip(f"z2jh schema not found at {Z2JH_DIR} (the shared reference data is absent)")
    schema = yaml.safe_load((Z2JH_DIR / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((Z2JH_DIR / "values.yaml").read_text())
    return schema, defaults


def helm_merge(defaults, overrides):
    """Helm's coalescing of user values over chart defaults: maps merge, a null deletes a key."""
    out = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def validate_z2jh(z2jh, values):
    schema, defaults = z2jh
    jsonschema.validate(helm_merge(defaults, values), schema)


@pytest.fixture(scope="session")
def helm_chart(tmp_path_factory):
    """(chart dir with its z2jh dependency built offline, helm home) — real Helm, built once."""
    from . import helm

    work = tmp_path_factory.mktemp("helm")
    return helm.build_chart(work), work / "helm-home"


@pytest.fixture(scope="session")
def helm_render(helm_chart, tmp_path_factory):
    """render(*values dicts, everything=False) -> the objects `helm template` renders (ours only
    unless everything=True); each values dict is one `-f` file, later ones win as in Helm."""
    from . import helm

    chart, home = helm_chart
    folder = tmp_path_factory.mktemp("values")

    def render(*values: dict, everything: bool = False, **template_args) -> list[dict]:
        files = []
        for v in values:
            f = folder / f"values-{len(list(folder.iterdir()))}.yaml"
            f.write_text(yaml.safe_dump(v))
            files.append(f)
        docs = helm.template(chart, files, home, **template_args)
        return docs if everything else helm.ours(docs)

    return render
