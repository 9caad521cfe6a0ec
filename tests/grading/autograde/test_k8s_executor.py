"""The Kubernetes executor's objects, validated offline against the Kubernetes schema, and the way
it scores what a pod returns (outside the pod, from our own sanitized copy)."""

from __future__ import annotations

import json

import kubernetes_validate
import nbformat
import pytest
from support import samples

from coursehub.grading.autograde import k8s_executor
from coursehub.grading.autograde.course import Course
from coursehub.grading.sandbox.limits import Limits
from coursehub.platform.settings import load_settings

KUBE_VERSION = "1.32.0"  # the oldest Kubernetes z2jh 4.4.0 supports


def manifest(obj):
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


@pytest.fixture
def course(demo_course, tmp_path):
    import shutil

    root = tmp_path / "course"
    shutil.copytree(demo_course, root)
    samples.write_submission(root, "alice", samples.correct(samples.released(root)))
    return Course(root)


@pytest.fixture
def executor():
    settings = load_settings(None)
    return k8s_executor.KubernetesExecutor(settings, Limits(memory_bytes=2**30, submission_timeout_seconds=300))


def test_job_configmap_and_policy_are_valid_kubernetes(course, executor):
    index = course.source_index("ps1")
    cm, job = executor.objects(course.job("alice", "ps1", index), index, course.config)
    for obj in (cm, job, k8s_executor.deny_egress_policy("coursehub")):
        kubernetes_validate.validate(manifest(obj), KUBE_VERSION, strict=True)


def test_job_pod_is_locked_down(course, executor):
    index = course.source_index("ps1")
    _, job = executor.objects(course.job("alice", "ps1", index), index, course.config)
    m = manifest(job)
    spec, pod = m["spec"], m["spec"]["template"]["spec"]
    assert spec["activeDeadlineSeconds"] == 360 and spec["ttlSecondsAfterFinished"] > 0 and spec["backoffLimit"] == 0
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["limits"]["memory"] == str(2**30) and "cpu" in c["resources"]["requests"]
    labels = m["spec"]["template"]["metadata"]["labels"]
    policy = manifest(k8s_executor.deny_egress_policy("coursehub"))
    assert set(policy["spec"]["podSelector"]["matchLabels"].items()) <= set(labels.items())
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"] and policy["spec"]["egress"] == []


def test_scores_come_from_our_copy_not_from_the_pod(course, executor):
    """A pod that returns forged metadata (1000 points) or a rewritten test cannot change grades;
    a notebook missing from the pod's log (killed) scores zero on its tests."""
    index = course.source_index("ps1")
    job = course.job("alice", "ps1", index)
    cm, _ = executor.objects(job, index, course.config)
    part1 = nbformat.reads(cm.data["part1.ipynb"], as_version=4)
    for cell in part1.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata["nbgrader"]["points"] = 1000
            cell.source = "pass"
    log = json.dumps({"name": "part1", "status": "graded", "reason": "", "notebook": nbformat.writes(part1)})
    result = executor.result_from_log(job, index, course.config, "noise\n" + log + "\n")
    by_name = {n.name: n for n in result.notebooks}
    assert by_name["part1"].scores["test-squares"]["max_score"] == 2.0
    assert by_name["part1"].scores["test-squares"]["auto_score"] == 2.0  # no outputs: passes, capped at 2
    assert by_name["part2"].status == "incomplete" and by_name["part2"].scores["test-warmest"]["auto_score"] == 0
    assert result.status == "incomplete"
