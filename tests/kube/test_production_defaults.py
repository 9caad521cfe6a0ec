"""Production defaults a z2jh operator expects (issue 11) and images by digest (issue 15), rendered by
the real Helm: the ServiceMonitor behind its capability check, the LTI tool key in a Secret, the
user-scheduler image of the cluster's minor, and course images pinned by digest."""

from __future__ import annotations

import base64
import datetime as dt
import json

import kubernetes_validate
import pytest
import yaml

from coursehub.platform.courses import load_catalog
from coursehub.platform.environments_image import course_image, pin_digest
from coursehub.platform.kube import names
from coursehub.platform.kube.helm_values import POD_STATE_DIR, RenderError, render, unpinned_digests
from coursehub.platform.lti.keys import load_or_create_key_pair, tool_key_path
from coursehub.platform.settings import load_settings

from . import helm
from .conftest import REPO, k8s_validate, validate_z2jh

WEEK = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
SERVICE_MONITOR_API = "monitoring.coreos.com/v1/ServiceMonitor"
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


def values_for(tmp_path, **kubernetes) -> dict:
    f = tmp_path / "settings.yaml"
    f.write_text(yaml.safe_dump({"mode": "kubernetes", "hub": {"ip": "0.0.0.0"}, "auth": {"dev_login": False},
                                 "kubernetes": kubernetes}))
    return render(load_settings(f), load_catalog(REPO / "courses"), week_of=WEEK)


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def mounts_of(pod: dict, container: int = 0) -> dict[str, tuple[dict, dict]]:
    """mountPath -> (mount, its volume)."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: (m, volumes[m["name"]]) for m in pod["containers"][container]["volumeMounts"]}


# ---- ServiceMonitor --------------------------------------------------------------------------


def test_service_monitor_only_where_the_cluster_serves_the_api(helm_render, tmp_path):
    values = values_for(tmp_path)
    assert "ServiceMonitor" not in {d["kind"] for d in helm_render(values)}
    docs = helm_render(values, everything=True, api_versions=(SERVICE_MONITOR_API,))
    (sm,) = by_kind(docs, "ServiceMonitor").values()
    # it selects the grading Service, on a port that Service has, in the release namespace
    service = by_kind(docs, "Service")[names.GRADING_NAME]
    assert set(sm["spec"]["selector"]["matchLabels"].items()) <= set(service["metadata"]["labels"].items())
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["coursehub"]}
    (endpoint,) = sm["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == names.METRICS_PATH == "/services/grading/metrics"
    # the bearer token is one z2jh really generates (Secret "hub"), of a hub service whose role has read:metrics
    cred = endpoint["authorization"]
    assert cred["type"] == "Bearer"
    hub_secret = by_kind(docs, "Secret")[cred["credentials"]["name"]]
    token = base64.b64decode(hub_secret["data"][cred["credentials"]["key"]]).decode()
    assert len(token) >= 32
    assert cred["credentials"]["key"] == f"hub.services.{names.METRICS_SERVICE}.apiToken"
    hub = values["jupyterhub"]["hub"]
    assert hub["loadRoles"][names.METRICS_SERVICE] == {"services": [names.METRICS_SERVICE], "scopes": ["read:metrics"]}
    assert "url" not in hub["services"][names.METRICS_SERVICE]  # a token, not a server behind the proxy


def test_service_monitor_switch_and_a_token_service_that_does_not_exist(helm_render, tmp_path):
    values = values_for(tmp_path)
    off = {"grading": {"serviceMonitor": {"enabled": False}}}
    assert "ServiceMonitor" not in {d["kind"] for d in helm_render(values, off, api_versions=(SERVICE_MONITOR_API,))}
    typo = {"grading": {"serviceMonitor": {"tokenService": "prometheus"}}}
    with pytest.raises(helm.HelmError, match="not a hub service"):
        helm_render(values, typo, api_versions=(SERVICE_MONITOR_API,))


# ---- the LTI tool key ------------------------------------------------------------------------


def test_tool_key_is_a_generated_secret_mounted_where_the_code_reads_it(helm_render, tmp_path):
    assert names.TOOL_KEY_FILE == str(tool_key_path(POD_STATE_DIR))
    values = values_for(tmp_path)
    assert values["ltiToolKey"] == {"create": True, "secretName": names.TOOL_KEY_SECRET}
    docs = helm_render(values, everything=True)
    secret = by_kind(docs, "Secret")[names.TOOL_KEY_SECRET]
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"  # uninstall keeps the key
    pem = base64.b64decode(secret["data"][names.TOOL_KEY_SECRET_KEY])
    key_file = tmp_path / "tool-key.pem"
    key_file.write_bytes(pem)
    pair = load_or_create_key_pair(key_file)  # the code's own loader accepts it (it does not make a new one)
    assert key_file.read_bytes() == pem and pair.private_key.key_size >= 2048
    for deployment in ("hub", names.GRADING_NAME):  # the hub serves its JWKS, the grading service signs scores
        pod = by_kind(docs, "Deployment")[deployment]["spec"]["template"]["spec"]
        mount, volume = mounts_of(pod)[names.TOOL_KEY_FILE]
        assert volume["secret"]["secretName"] == names.TOOL_KEY_SECRET, deployment
        assert mount["subPath"] == names.TOOL_KEY_SECRET_KEY and mount["readOnly"] is True
        assert volume["secret"]["defaultMode"] == 0o440
    assert not any(names.TOOL_KEY_SECRET_KEY in (d.get("data") or {}) for d in docs if d["kind"] == "ConfigMap")


def test_an_existing_tool_key_secret_is_mounted_and_none_is_generated(helm_render, tmp_path):
    values = values_for(tmp_path, lti_key_secret="campus-lti-key")
    assert values["ltiToolKey"] == {"create": False, "secretName": "campus-lti-key"}
    docs = helm_render(values, everything=True)
    assert names.TOOL_KEY_SECRET not in by_kind(docs, "Secret")
    assert "campus-lti-key" not in by_kind(docs, "Secret")  # the operator's, not the chart's
    for deployment in ("hub", names.GRADING_NAME):
        pod = by_kind(docs, "Deployment")[deployment]["spec"]["template"]["spec"]
        assert mounts_of(pod)[names.TOOL_KEY_FILE][1]["secret"]["secretName"] == "campus-lti-key"


# ---- the user-scheduler of the cluster's minor ------------------------------------------------


@pytest.mark.parametrize(("minor", "tag"), [("1.29", "v1.29.15"), ("1.31", "v1.31.10")])
def test_user_scheduler_runs_the_clusters_minor(helm_render, tmp_path, z2jh, minor, tag):
    values = values_for(tmp_path, version=minor)
    validate_z2jh(z2jh, values["jupyterhub"])
    docs = helm_render(values, everything=True, kube_version=f"{minor}.0")
    pod = by_kind(docs, "Deployment")["user-scheduler"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == f"registry.k8s.io/kube-scheduler:{tag}"
    for doc in helm.ours(docs):  # our objects are valid on that (older) Kubernetes too
        kubernetes_validate.validate(doc, f"{minor}.0", strict=True)


def test_a_scheduler_of_another_minor_is_refused_with_what_to_set(helm_render, tmp_path):
    values = values_for(tmp_path, version="1.31")
    with pytest.raises(helm.HelmError, match=r'kubernetes.version: \\?"1.29\\?"'):
        helm_render(values, kube_version="1.29.0")
    # the chart's own default is checked as well, and the check can be switched off knowingly
    with pytest.raises(helm.HelmError, match="not of this cluster's Kubernetes minor 1.31"):
        helm_render(kube_version="1.31.0")
    assert helm_render({"coursehub": {"checkUserSchedulerVersion": False}}, kube_version="1.31.0")


def test_an_unknown_minor_is_a_render_error(tmp_path):
    with pytest.raises(RenderError, match="1.27.*known: 1.28"):
        values_for(tmp_path, version="1.27")


# ---- images by digest ------------------------------------------------------------------------


def test_course_images_by_digest_in_profile_grading_jobs_and_pre_puller(helm_render, tmp_path, z2jh):
    settings = load_settings()
    env_image = course_image(settings, "demo-101", "ghcr.io/coursehub")
    assert env_image, "demo-101 has a locked environment folder"
    grader = "ghcr.io/coursehub/grader:0.1.0"
    values = values_for(tmp_path, image_digests={env_image: DIGEST,
                                                 grader: f"ghcr.io/coursehub/grader@{OTHER_DIGEST}"})
    validate_z2jh(z2jh, values["jupyterhub"])
    pinned = f"{env_image}@{DIGEST}"
    (profile,) = [p for p in values["jupyterhub"]["singleuser"]["profileList"] if p["slug"] == "demo-101"]
    assert profile["kubespawner_override"]["image"] == pinned
    assert values["autograde"]["courseImages"]["demo-101"] == pinned
    docs = helm_render(values, everything=True)
    worker = by_kind(docs, "Deployment")[names.WORKER_NAME]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in worker["env"]}
    assert json.loads(env[names.ENV_COURSE_IMAGES])["demo-101"] == pinned  # the course's grading Jobs
    assert env[names.ENV_IMAGE] == f"{grader}@{OTHER_DIGEST}"  # the default grader, pinned too
    for doc in helm.ours(docs):
        k8s_validate(doc)
    assert unpinned_digests(load_settings(tmp_path / "settings.yaml"), values) == []


def test_a_digest_for_another_tag_pins_nothing_and_is_reported(tmp_path):
    settings = load_settings()
    env_image = course_image(settings, "demo-101", "ghcr.io/coursehub")
    stale = env_image.rsplit(":", 1)[0] + ":0000000000ab"  # the image of an older lock
    values = values_for(tmp_path, image_digests={stale: DIGEST})
    (profile,) = [p for p in values["jupyterhub"]["singleuser"]["profileList"] if p["slug"] == "demo-101"]
    assert profile["kubespawner_override"]["image"] == env_image  # the current lock's tag, unpinned
    assert values["autograde"]["courseImages"]["demo-101"] == env_image
    assert unpinned_digests(load_settings(tmp_path / "settings.yaml"), values) == [stale]


@pytest.mark.parametrize(("given", "error"), [
    ("sha256:1234", "is not a digest"),
    ("latest", "is not a digest"),
    ("ghcr.io/someone-else/img@" + DIGEST, "the digest is of ghcr.io/someone-else/img"),
])
def test_wrong_digests_are_refused(tmp_path, given, error):
    image = course_image(load_settings(), "demo-101", "ghcr.io/coursehub")
    with pytest.raises(RenderError, match=error):
        values_for(tmp_path, image_digests={image: given})


def test_pin_digest_keeps_registry_ports_and_accepts_docker_inspect_output():
    ref = "registry.example.edu:5000/courses/coursehub-x:abc"
    assert pin_digest(ref, {ref: f"registry.example.edu:5000/courses/coursehub-x@{DIGEST}"}) == f"{ref}@{DIGEST}"
    assert pin_digest(ref, {}) == ref


def test_chart_defaults_agree_with_the_code():
    """values.yaml (used without `coursehub helm-values`) names the same token service, key Secret,
    mount and scheduler tag as the code."""
    from coursehub.platform.kube.scheduler_image import DEFAULT_MINOR, KUBE_SCHEDULER_TAGS

    v = yaml.safe_load((REPO / "helm" / "coursehub" / "values.yaml").read_text())
    hub = v["jupyterhub"]["hub"]
    assert v["grading"]["serviceMonitor"]["tokenService"] == names.METRICS_SERVICE
    assert names.METRICS_SERVICE in hub["services"]
    assert hub["loadRoles"][names.METRICS_SERVICE]["scopes"] == ["read:metrics"]
    assert v["ltiToolKey"] == {"create": True, "secretName": names.TOOL_KEY_SECRET}
    volumes = {x["name"]: x for x in hub["extraVolumes"]}
    (mount,) = [m for m in hub["extraVolumeMounts"] if m["mountPath"] == names.TOOL_KEY_FILE]
    assert volumes[mount["name"]]["secret"]["secretName"] == names.TOOL_KEY_SECRET
    assert v["jupyterhub"]["scheduling"]["userScheduler"]["image"]["tag"] == KUBE_SCHEDULER_TAGS[DEFAULT_MINOR]
    assert helm.KUBE_VERSION.startswith(DEFAULT_MINOR + ".")  # the chart's defaults install on the tests' cluster
