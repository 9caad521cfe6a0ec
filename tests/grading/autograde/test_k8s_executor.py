"""The Kubernetes executor's objects, validated offline against the Kubernetes schema, and the way
it scores what a pod returns (outside the pod, from our own sanitized copy)."""

from __future__ import annotations

import json

import kubernetes_validate
import nbformat
import pytest
from support import samples

from coursehub.grading.autograde import k8s_executor
from coursehub.grading.autograde.course import NbgraderCourse
from coursehub.grading.sandbox.limits import KernelLimits
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
    return NbgraderCourse(root)


@pytest.fixture
def executor():
    settings = load_settings(None)
    return k8s_executor.KubernetesExecutor(settings, KernelLimits(memory_bytes=2**30, submission_timeout_seconds=300))


def test_job_is_valid_kubernetes_and_carries_no_inputs(course, executor):
    index = course.source_index("ps1")
    payload, job = executor.objects(course.job("alice", "ps1", index), index, course.config, job_id="abc123")
    m = manifest(job)
    kubernetes_validate.validate(m, KUBE_VERSION, strict=True)
    assert m["metadata"]["name"] == "autograde-abc123" and "alice" not in json.dumps(m)  # opaque names
    assert set(payload["notebooks"]) == {"part1", "part2"}
    assert not any("configMap" in v for v in m["spec"]["template"]["spec"]["volumes"])


def test_job_pod_is_locked_down(course, executor):
    index = course.source_index("ps1")
    _, job = executor.objects(course.job("alice", "ps1", index), index, course.config)
    m = manifest(job)
    spec, pod = m["spec"], m["spec"]["template"]["spec"]
    # Pending time counts against activeDeadlineSeconds: it only bounds the Job generously.
    assert spec["activeDeadlineSeconds"] > k8s_executor.PENDING_ALLOWANCE_SECONDS + 300
    assert spec["ttlSecondsAfterFinished"] > 0 and spec["backoffLimit"] == 0
    assert spec["podFailurePolicy"]["rules"][0]["action"] == "Ignore"
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "coursehub-autograde"
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["limits"]["memory"] == str(2**30) and "cpu" in c["resources"]["requests"]
    labels = m["spec"]["template"]["metadata"]["labels"]
    from coursehub.platform.kube import names

    assert set(names.AUTOGRADE_POD_LABELS.items()) <= set(labels.items())


def test_executor_names_match_the_chart():
    from coursehub.platform.kube import names

    assert k8s_executor.GRADER_LABELS == names.AUTOGRADE_POD_LABELS
    for const in ("ENV_NAMESPACE", "ENV_SERVICE_ACCOUNT", "ENV_IMAGE", "ENV_COURSE_IMAGES", "ENV_CALLBACK_URL",
                  "ENV_LISTEN", "AUTOGRADE_SERVICE_ACCOUNT"):
        assert getattr(k8s_executor, const) == getattr(names, const), const
    assert k8s_executor.NAMESPACE_SUFFIX == names.AUTOGRADE_NAMESPACE_SUFFIX
    assert k8s_executor.JOB_PORT == names.WORKER_JOB_PORT


def test_executor_takes_namespace_account_and_images_from_the_deployment(monkeypatch, course):
    monkeypatch.setenv("COURSEHUB_AUTOGRADE_NAMESPACE", "ag")
    monkeypatch.setenv("COURSEHUB_AUTOGRADE_SERVICE_ACCOUNT", "runner")
    monkeypatch.setenv("COURSEHUB_AUTOGRADE_IMAGE", "reg/grader:1")
    monkeypatch.setenv("COURSEHUB_AUTOGRADE_COURSE_IMAGES", json.dumps({"demo-101": "reg/grader-demo-101:1"}))
    ex = k8s_executor.KubernetesExecutor(load_settings(None), KernelLimits())
    index = course.source_index("ps1")
    _, job = ex.objects(course.job("alice", "ps1", index), index, course.config)
    m = manifest(job)
    assert m["metadata"]["namespace"] == "ag"
    assert m["spec"]["template"]["spec"]["serviceAccountName"] == "runner"
    image = m["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == ("reg/grader-demo-101:1" if course.config.CourseDirectory.course_id == "demo-101"
                     else "reg/grader:1")


def test_scores_come_from_our_copy_not_from_the_pod(course, executor):
    """A pod that returns forged metadata (1000 points) or a rewritten test cannot change grades;
    a notebook the pod did not return (killed) scores zero on its tests."""
    index = course.source_index("ps1")
    job = course.job("alice", "ps1", index)
    payload, _ = executor.objects(job, index, course.config)
    part1 = nbformat.reads(payload["notebooks"]["part1"], as_version=4)
    for cell in part1.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.metadata["nbgrader"]["points"] = 1000
            cell.source = "pass"
    got = {"part1": {"name": "part1", "status": "graded", "reason": "", "notebook": nbformat.writes(part1)}}
    result = executor.result_from_outputs(job, index, course.config, got)
    by_name = {n.name: n for n in result.notebooks}
    assert by_name["part1"].scores["test-squares"]["max_score"] == 2.0
    assert by_name["part1"].scores["test-squares"]["auto_score"] == 2.0  # no outputs: passes, capped at 2
    assert by_name["part2"].status == "incomplete" and by_name["part2"].scores["test-warmest"]["auto_score"] == 0
    assert result.status == "incomplete"


def test_an_infrastructure_failure_in_the_pod_is_retried_not_graded(course, executor):
    index = course.source_index("ps1")
    job = course.job("alice", "ps1", index)
    got = {"part1": {"name": "part1", "status": "incomplete", "infra": "the kernel never started",
                     "notebook": ""}}
    with pytest.raises(k8s_executor.InfraError):
        executor.result_from_outputs(job, index, course.config, got)


def test_oversized_submissions_fail_with_a_clear_error(course, executor):
    index = course.source_index("ps1")
    job = course.job("alice", "ps1", index)
    job.files["data/big.bin"] = b"x" * (executor.max_file_bytes + 1)
    assert "data/big.bin" in executor.too_big(job) and "grading.max_file_bytes" in executor.too_big(job)
    job.files.pop("data/big.bin")
    executor.max_input_bytes = 10
    assert "grading.max_submission_bytes" in executor.too_big(job)


def test_unreadable_or_oversized_submissions_are_invalid_and_no_job_is_created(course, executor, monkeypatch):
    """As the local grader: the student's files get status `invalid` with the reason; nothing runs."""
    monkeypatch.setattr(executor, "_apis", lambda: pytest.fail("no Kubernetes call for an invalid submission"))
    index = course.source_index("ps1")
    job = course.job("alice", "ps1", index)
    job.invalid = "part1.ipynb is not UTF-8"
    result = executor.grade(job, index, course.config)
    assert (result.status, result.error) == ("invalid", "part1.ipynb is not UTF-8")
    job = course.job("bob", "ps1", index)
    job.files["data/big.bin"] = b"x" * (executor.max_file_bytes + 1)
    result = executor.grade(job, index, course.config)
    assert result.status == "invalid" and "data/big.bin" in result.error


def test_grading_jobs_mount_the_course_volume_datasets_read_only(course, tmp_path):
    folder = tmp_path / "catalog" / "demo-101"
    (folder / "data" / "local").mkdir(parents=True)
    (folder / "course.yaml").write_text(
        "id: demo-101\ntitle: D\ndata:\n  - name: local\n    path: data/local\n"
        "  - name: era_5\n    volume: {claim: era5-readonly, sub_path: v1}\n    mount: /srv/data/climate\n")
    ex = k8s_executor.KubernetesExecutor(load_settings(None, courses_dir=tmp_path / "catalog"), KernelLimits())
    index = course.source_index("ps1")
    _, job = ex.objects(course.job("alice", "ps1", index), index, course.config, job_id="abc123")
    m = manifest(job)
    kubernetes_validate.validate(m, KUBE_VERSION, strict=True)
    pod = m["spec"]["template"]["spec"]
    assert {"name": "data-1-era-5", "persistentVolumeClaim": {"claimName": "era5-readonly", "readOnly": True}} \
        in pod["volumes"]
    mounts = pod["containers"][0]["volumeMounts"]
    assert {"name": "data-1-era-5", "mountPath": "/srv/data/climate", "readOnly": True, "subPath": "v1"} in mounts
    assert len(mounts) == 3  # work, tmp and the volume: a folder dataset is local-only
    config = course.config.copy()
    config.CourseDirectory.course_id = "other-course"
    assert ex.data_for(config) == []
