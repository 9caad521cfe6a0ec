"""The Kubernetes executor: one batch/v1 Job per submission, built with the kubernetes client models.

Per submission: a ConfigMap with the sanitized notebooks (and the files the kernel may read) and a
Job whose pod runs `podrun` on them. The pod is the sandbox:
- resource requests and limits (CPU, memory, ephemeral storage) from settings.grading.sandbox;
- non-root (uid 1000), no privilege escalation, all capabilities dropped, seccomp RuntimeDefault,
  read-only root filesystem (writable: an emptyDir workspace and /tmp, both size-limited);
- no service-account token (automountServiceAccountToken: false), no service links;
- activeDeadlineSeconds (the submission's wall time), ttlSecondsAfterFinished (clean-up),
  backoffLimit 0 (retries belong to the durable queue, which counts attempts);
- a NetworkPolicy that selects every grader pod and allows no egress (and no ingress).
Results come back as the pod's log (one JSON line per notebook); scores are computed here, outside
the pod, with nbgrader's steps, exactly like the local executor.
"""

from __future__ import annotations

import json
import re
import time
import uuid

import nbformat
from kubernetes import client as k8s
from traitlets.config import Config

from coursehub.grading.sandbox.limits import Limits

from . import steps
from .grader import NotebookResult, SubmissionJob, SubmissionResult, worst
from .sources import SourceIndex

GRADER_LABELS = {"app.kubernetes.io/name": "coursehub", "app.kubernetes.io/component": "grader"}
WORKSPACE = "/home/student/work"


def _name(*parts: str) -> str:
    """A DNS-1123 name (<= 63 chars) from parts; a random suffix keeps retries distinct."""
    raw = "-".join(parts).lower()
    raw = re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")[:48].strip("-")
    return f"{raw}-{uuid.uuid4().hex[:8]}"


def deny_egress_policy(namespace: str) -> k8s.V1NetworkPolicy:
    """Grader pods may talk to nothing, and nothing may talk to them."""
    return k8s.V1NetworkPolicy(
        api_version="networking.k8s.io/v1", kind="NetworkPolicy",
        metadata=k8s.V1ObjectMeta(name="coursehub-grader-deny-all", namespace=namespace, labels=dict(GRADER_LABELS)),
        spec=k8s.V1NetworkPolicySpec(
            pod_selector=k8s.V1LabelSelector(match_labels=dict(GRADER_LABELS)),
            policy_types=["Ingress", "Egress"], ingress=[], egress=[],
        ),
    )


def input_configmap(name: str, namespace: str, job: SubmissionJob, sanitized: dict[str, str], limits: Limits,
                    config: Config) -> k8s.V1ConfigMap:
    import base64

    spec = {"notebooks": list(sanitized), "files": sorted(job.files), "limits": limits.as_dict(),
            "config": json.loads(json.dumps(config, default=str))}
    data = {"job.json": json.dumps(spec)} | {f"{n}.ipynb": text for n, text in sanitized.items()}
    binary = {rel.replace("/", "__"): base64.b64encode(b).decode() for rel, b in job.files.items()}
    return k8s.V1ConfigMap(
        api_version="v1", kind="ConfigMap",
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=dict(GRADER_LABELS)),
        data=data, binary_data=binary or None,
    )


def grader_job(name: str, namespace: str, image: str, configmap: str, limits: Limits, job: SubmissionJob,
               cpu: str = "1") -> k8s.V1Job:
    files = [k8s.V1KeyToPath(key=rel.replace("/", "__"), path=f"files/{rel.replace('/', '__')}")
             for rel in sorted(job.files)]
    items = [k8s.V1KeyToPath(key="job.json", path="job.json")] + [
        k8s.V1KeyToPath(key=f"{n}.ipynb", path=f"{n}.ipynb") for n in sorted(job.notebooks)] + files
    mem = str(limits.memory_bytes)
    container = k8s.V1Container(
        name="grader", image=image, image_pull_policy="IfNotPresent",
        command=["python", "-m", "coursehub.grading.autograde.podrun", "/input"],
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in {
            "NBGRADER_EXECUTION": "autograde", "HOME": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
            "MPLCONFIGDIR": "/tmp/.matplotlib", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter",
            "PYTHONDONTWRITEBYTECODE": "1", "COURSEHUB_WORKSPACE": WORKSPACE}.items()],
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": "250m", "memory": mem, "ephemeral-storage": str(limits.file_size_bytes)},
            limits={"cpu": cpu, "memory": mem,
                    "ephemeral-storage": str(limits.file_size_bytes + limits.tmp_bytes)},
        ),
        security_context=k8s.V1SecurityContext(
            run_as_non_root=True, run_as_user=1000, run_as_group=1000, allow_privilege_escalation=False,
            read_only_root_filesystem=True, privileged=False,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volume_mounts=[
            k8s.V1VolumeMount(name="input", mount_path="/input", read_only=True),
            k8s.V1VolumeMount(name="work", mount_path=WORKSPACE),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
        ],
    )
    pod = k8s.V1PodSpec(
        restart_policy="Never", automount_service_account_token=False, enable_service_links=False,
        host_network=False, host_pid=False, host_ipc=False, share_process_namespace=False,
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000, run_as_group=1000,
                                                  fs_group=1000,
                                                  seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        containers=[container],
        volumes=[
            k8s.V1Volume(name="input", config_map=k8s.V1ConfigMapVolumeSource(name=configmap, items=items)),
            k8s.V1Volume(name="work", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=str(limits.file_size_bytes))),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory",
                                                                          size_limit=str(limits.tmp_bytes))),
        ],
    )
    labels = dict(GRADER_LABELS) | {"coursehub.io/assignment": re.sub(r"[^A-Za-z0-9_.-]", "-", job.assignment)[:63]}
    return k8s.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=k8s.V1JobSpec(
            backoff_limit=0, active_deadline_seconds=limits.submission_timeout_seconds + 60,
            ttl_seconds_after_finished=600,
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
        ),
    )


class KubernetesExecutor:
    """Grades through Jobs in the configured namespace (needs in-cluster or kubeconfig credentials
    with rights on jobs, pods/log and configmaps in that namespace only)."""

    def __init__(self, settings, limits: Limits, batch=None, core=None, networking=None) -> None:
        self.namespace = settings.kubernetes.namespace
        self.image = settings.kubernetes.grader_image
        self.limits = limits
        self._batch, self._core, self._net = batch, core, networking
        self._policy_ready = False

    def _apis(self):
        if self._batch is None:
            from kubernetes import config as kconfig

            try:
                kconfig.load_incluster_config()
            except kconfig.ConfigException:
                kconfig.load_kube_config()
            self._batch, self._core, self._net = k8s.BatchV1Api(), k8s.CoreV1Api(), k8s.NetworkingV1Api()
        return self._batch, self._core, self._net

    def objects(self, job: SubmissionJob, index: SourceIndex, config: Config) -> tuple[k8s.V1ConfigMap, k8s.V1Job]:
        sanitized = {}
        for name in [n for n in index.notebooks if n in job.notebooks]:
            res = steps.resources_for(job.student, job.assignment, name, index)
            sanitized[name] = steps.sanitize(job.notebooks[name], res, config)
        name = _name("grade", job.assignment, job.student)
        cm = input_configmap(name, self.namespace, job, sanitized, self.limits, config)
        return cm, grader_job(name, self.namespace, self.image, name, self.limits, job)

    def grade(self, job: SubmissionJob, index: SourceIndex, config: Config) -> SubmissionResult:
        batch, core, net = self._apis()
        t0 = time.monotonic()
        if not self._policy_ready:
            try:
                net.create_namespaced_network_policy(self.namespace, deny_egress_policy(self.namespace))
            except k8s.ApiException as e:
                if e.status != 409:  # already there
                    raise
            self._policy_ready = True
        cm, kjob = self.objects(job, index, config)
        name = kjob.metadata.name
        core.create_namespaced_config_map(self.namespace, cm)
        try:
            batch.create_namespaced_job(self.namespace, kjob)
            deadline = time.monotonic() + kjob.spec.active_deadline_seconds + 120
            while time.monotonic() < deadline:
                st = batch.read_namespaced_job_status(name, self.namespace).status
                if st.succeeded or st.failed:
                    break
                time.sleep(2)
            pods = core.list_namespaced_pod(self.namespace, label_selector=f"job-name={name}").items
            log = core.read_namespaced_pod_log(pods[0].metadata.name, self.namespace) if pods else ""
        finally:
            core.delete_namespaced_config_map(cm.metadata.name, self.namespace)
        return self.result_from_log(job, index, config, log, time.monotonic() - t0)

    @staticmethod
    def result_from_log(job: SubmissionJob, index: SourceIndex, config: Config, log: str,
                        seconds: float = 0.0) -> SubmissionResult:
        """Score the pod's notebooks outside the pod. A notebook missing from the log (the pod was
        killed by its deadline or memory limit) is not run: all its tests fail ("incomplete")."""
        from .execute import INCOMPLETE, mark_unfinished

        got = {}
        for line in log.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and "name" in d and "notebook" in d:
                got[d["name"]] = d
        result = SubmissionResult(job.student, job.assignment, "graded", seconds=seconds)
        for name in [n for n in index.notebooks if n in job.notebooks]:
            # Our own sanitized copy decides sources and metadata (points!); the pod only supplies
            # outputs, cell by cell. A notebook whose shape changed, or that is missing, did not run.
            res_s = steps.resources_for(job.student, job.assignment, name, index)
            nb = nbformat.reads(steps.sanitize(job.notebooks[name], res_s, config), as_version=4)
            ran = None
            if name in got:
                try:
                    ran = nbformat.reads(got[name]["notebook"], as_version=4)
                except Exception:  # noqa: BLE001 - the pod's output is untrusted
                    ran = None
            if ran is not None and len(ran.cells) == len(nb.cells):
                for mine, theirs in zip(nb.cells, ran.cells, strict=True):
                    if mine.cell_type == "code":
                        mine.outputs = [o for o in theirs.get("outputs", []) if isinstance(o, dict)]
                        mine.execution_count = theirs.get("execution_count")
                status, reason = str(got[name].get("status", INCOMPLETE)), str(got[name].get("reason", ""))
                if status not in ("graded", "incomplete", "timeout", "output_limit"):
                    status = INCOMPLETE
            else:
                status, reason = INCOMPLETE, "the grader pod stopped before this notebook finished"
                mark_unfinished(nb, 0, "KernelStopped", reason)
            res = steps.resources_for(job.student, job.assignment, name, None)
            finished = steps.finish(nb, res, config)
            result.notebooks.append(NotebookResult(name, status, reason, finished,
                                                   steps.cell_scores(nbformat.reads(finished, as_version=4))))
        result.status = worst([n.status for n in result.notebooks])
        return result

    def close(self) -> None:
        return None
