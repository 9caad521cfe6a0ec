"""The Kubernetes executor: one batch/v1 Job per submission, in the autograde namespace.

The queue worker (its own Deployment) runs this executor. Per submission:
- a Job named by an opaque id (no student id), labelled AUTOGRADE_POD_LABELS (the namespace's
  deny-all NetworkPolicy), running as the token-less autograde account, with the image of the
  course's own environment (`COURSEHUB_AUTOGRADE_COURSE_IMAGES`, else the default grader image);
- inputs and results never travel through ConfigMaps or the container log: the pod fetches its
  sanitized notebooks from the worker's job port (`JobInbox`) with a per-job token and returns
  each notebook there; kubelet log rotation and student prints cannot cut or forge the channel;
- the pod is the sandbox: limits, non-root, read-only root filesystem, all capabilities dropped,
  seccomp RuntimeDefault, no service-account token, no service links;
- the submission's wall time is enforced by `podrun` from the moment it starts, not by the Job's
  activeDeadlineSeconds (which also counts Pending time): that only bounds the whole Job generously;
- a pod the cluster took away (evicted, preempted, never started, deadline while Pending) or that
  returned nothing is an infrastructure failure: `InfraError`, which the queue retries; it is never
  graded as 0. `podFailurePolicy` lets Kubernetes replace a disrupted pod by itself first.
Jobs are watched (one watch per Job), not polled. Scores are computed here, outside the pod, with
nbgrader's steps from our own sanitized copy, exactly like the local executor.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nbformat
from kubernetes import client as k8s
from traitlets.config import Config

from coursehub.grading.sandbox.limits import KernelLimits

from . import steps
from .grader import NotebookResult, SubmissionJob, SubmissionResult, worst
from .sources import SourceIndex

log = logging.getLogger("coursehub.grading.autograde")

#: The chart's names (coursehub.platform.kube.names, which grading may not import; a test checks
#: they agree): pod labels its policies select, and the worker Deployment's environment.
GRADER_LABELS = {"app.kubernetes.io/name": "coursehub", "app.kubernetes.io/component": "autograde"}
ENV_NAMESPACE = "COURSEHUB_AUTOGRADE_NAMESPACE"
ENV_SERVICE_ACCOUNT = "COURSEHUB_AUTOGRADE_SERVICE_ACCOUNT"
ENV_IMAGE = "COURSEHUB_AUTOGRADE_IMAGE"
ENV_COURSE_IMAGES = "COURSEHUB_AUTOGRADE_COURSE_IMAGES"
ENV_CALLBACK_URL = "COURSEHUB_AUTOGRADE_CALLBACK_URL"
ENV_LISTEN = "COURSEHUB_AUTOGRADE_LISTEN"
AUTOGRADE_SERVICE_ACCOUNT = "coursehub-autograde"
NAMESPACE_SUFFIX = "-autograde"
JOB_PORT = 8091
JOB_LABEL = "coursehub.io/autograde-job"
WORKSPACE = "/home/student/work"
#: How long a Job may wait to be scheduled (node scale-up in a deadline rush) before it is given up
#: and retried through the queue; grading time itself is bounded by podrun.
PENDING_ALLOWANCE_SECONDS = 1800
#: Largest notebook result a pod may return (the executed notebook with outputs).
MAX_RESULT_BYTES = 64 * 2**20


class InfraError(RuntimeError):
    """The cluster, not the submission, failed: the queue retries the job (never a grade)."""


def _env_json(name: str) -> dict:
    try:
        value = json.loads(os.environ.get(name) or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# ---- the job port: inputs out, results in ---------------------------------------------------


@dataclass
class JobSlot:
    token: str
    payload: bytes
    payload_names: tuple[str, ...] = ()
    results: dict[str, dict] = field(default_factory=dict)
    fetched: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class JobInbox:
    """HTTP on the worker's job port: GET /jobs/<id>/input, PUT /jobs/<id>/notebooks/<name>,
    POST /jobs/<id>/done, each with `Authorization: Bearer <the job's token>`."""

    def __init__(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        self.slots: dict[str, JobSlot] = {}
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # noqa: D102 - quiet; errors are logged below
                pass

            def _slot(self) -> tuple[JobSlot | None, list[str]]:
                parts = self.path.strip("/").split("/")
                slot = inbox.slots.get(parts[1]) if len(parts) >= 3 and parts[0] == "jobs" else None
                given = self.headers.get("Authorization", "").removeprefix("Bearer ").encode()
                if slot is None or not hmac.compare_digest(given, slot.token.encode()):
                    self._reply(404, b"no such job")  # same answer for a wrong token: nothing to probe
                    return None, parts
                return slot, parts

            def _reply(self, code: int, body: bytes = b"", ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                slot, parts = self._slot()
                if slot is not None and parts[2:] == ["input"]:
                    slot.fetched = True
                    self._reply(200, slot.payload, "application/json")
                elif slot is not None:
                    self._reply(404, b"unknown path")

            def _body(self) -> bytes | None:
                size = int(self.headers.get("Content-Length") or 0)
                if size > MAX_RESULT_BYTES:
                    self._reply(413, f"a result may be at most {MAX_RESULT_BYTES} bytes".encode())
                    return None
                return self.rfile.read(size)

            def do_PUT(self) -> None:  # noqa: N802
                slot, parts = self._slot()
                if slot is None:
                    return
                body = self._body()
                if body is None:
                    return
                if len(parts) == 4 and parts[2] == "notebooks":
                    try:
                        slot.results[parts[3]] = json.loads(body)
                    except ValueError:
                        self._reply(400, b"not JSON")
                        return
                    self._reply(204)
                else:
                    self._reply(404, b"unknown path")

            def do_POST(self) -> None:  # noqa: N802
                slot, parts = self._slot()
                if slot is not None and parts[2:] == ["done"]:
                    slot.done.set()
                    self._reply(204)
                elif slot is not None:
                    self._reply(404, b"unknown path")

        self.server = ThreadingHTTPServer((host or "0.0.0.0", int(port or 0)), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="autograde-inbox", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def open(self, job_id: str, payload: dict) -> JobSlot:
        slot = JobSlot(token=secrets.token_urlsafe(32), payload=json.dumps(payload).encode(),
                       payload_names=tuple(payload.get("notebooks", {})))
        self.slots[job_id] = slot
        return slot

    def close_slot(self, job_id: str) -> None:
        self.slots.pop(job_id, None)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- the Kubernetes objects -----------------------------------------------------------------


def job_input(job: SubmissionJob, sanitized: dict[str, str], limits: KernelLimits, config: Config) -> dict:
    """What the pod fetches: sanitized notebooks, the files the kernel may read, limits, config."""
    return {
        "notebooks": sanitized,
        "files": {rel: base64.b64encode(b).decode() for rel, b in sorted(job.files.items())},
        "limits": limits.as_dict(),
        "config": json.loads(json.dumps(config, default=str)),
    }


@dataclass(frozen=True)
class DataVolume:
    """A course dataset on a volume claim (course.yaml `data:`), mounted read-only in the grader pod.
    The claim must exist in the autograde namespace too (claims are namespaced)."""

    name: str
    claim: str
    mount_path: str
    sub_path: str = ""


def course_data_volumes(courses_dir, course_id: str) -> list[DataVolume]:  # noqa: ANN001 - a path
    """The volume datasets of a catalog course (folder datasets are local-only); none for others."""
    from pathlib import Path

    from coursehub.platform.environments_data import course_data, volume_name

    folder = Path(courses_dir) / course_id if course_id else None
    if folder is None or not (folder / "course.yaml").is_file():
        return []
    return [DataVolume(volume_name(i, d), d.volume.claim, str(d.mount_path), d.volume.sub_path)
            for i, d in enumerate(course_data(folder)) if d.volume is not None]


def grader_job(name: str, namespace: str, image: str, limits: KernelLimits, *, job_id: str, job_url: str,
               token: str, service_account: str, cpu: str = "1", data: list[DataVolume] | None = None) -> k8s.V1Job:
    mem = str(limits.memory_bytes)
    data = list(data or [])
    container = k8s.V1Container(
        name="grader", image=image, image_pull_policy="IfNotPresent",
        command=["python", "-m", "coursehub.grading.autograde.podrun"],
        env=[k8s.V1EnvVar(name=k, value=v) for k, v in {
            "NBGRADER_EXECUTION": "autograde", "HOME": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
            "MPLCONFIGDIR": "/tmp/.matplotlib", "JUPYTER_RUNTIME_DIR": "/tmp/.jupyter",
            "PYTHONDONTWRITEBYTECODE": "1", "COURSEHUB_WORKSPACE": WORKSPACE,
            "COURSEHUB_JOB_URL": job_url, "COURSEHUB_JOB_TOKEN": token}.items()],
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
            k8s.V1VolumeMount(name="work", mount_path=WORKSPACE),
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            *(k8s.V1VolumeMount(name=d.name, mount_path=d.mount_path, read_only=True, sub_path=d.sub_path or None)
              for d in data),
        ],
    )
    pod = k8s.V1PodSpec(
        restart_policy="Never", service_account_name=service_account, automount_service_account_token=False,
        enable_service_links=False, host_network=False, host_pid=False, host_ipc=False,
        share_process_namespace=False,
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000, run_as_group=1000,
                                                  fs_group=1000,
                                                  seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault")),
        containers=[container],
        volumes=[
            k8s.V1Volume(name="work", empty_dir=k8s.V1EmptyDirVolumeSource(size_limit=str(limits.file_size_bytes))),
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory",
                                                                          size_limit=str(limits.tmp_bytes))),
            *(k8s.V1Volume(name=d.name, persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(
                claim_name=d.claim, read_only=True)) for d in data),
        ],
    )
    labels = dict(GRADER_LABELS) | {JOB_LABEL: job_id}
    return k8s.V1Job(
        api_version="batch/v1", kind="Job",
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        spec=k8s.V1JobSpec(
            backoff_limit=0,
            # Pending time counts here: generous; podrun bounds the grading itself.
            active_deadline_seconds=PENDING_ALLOWANCE_SECONDS + limits.submission_timeout_seconds + 60,
            ttl_seconds_after_finished=600,
            # A pod the cluster disrupted (drain, preemption, eviction) is replaced, not counted.
            pod_failure_policy=k8s.V1PodFailurePolicy(rules=[k8s.V1PodFailurePolicyRule(
                action="Ignore", on_pod_conditions=[k8s.V1PodFailurePolicyOnPodConditionsPattern(
                    type="DisruptionTarget", status="True")])]),
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
        ),
    )


# ---- the executor ---------------------------------------------------------------------------


class KubernetesExecutor:
    """Grades through Jobs in the autograde namespace, with the rights the chart's Role gives the
    worker there: jobs (create, get, list, watch, delete) and pods (get, list, watch)."""

    def __init__(self, settings, limits: KernelLimits, batch=None, core=None, inbox: JobInbox | None = None) -> None:
        self.namespace = os.environ.get(ENV_NAMESPACE) or settings.kubernetes.namespace + NAMESPACE_SUFFIX
        self.image = os.environ.get(ENV_IMAGE) or settings.kubernetes.grader_image
        self.course_images = _env_json(ENV_COURSE_IMAGES)
        self.service_account = os.environ.get(ENV_SERVICE_ACCOUNT) or AUTOGRADE_SERVICE_ACCOUNT
        self.listen = os.environ.get(ENV_LISTEN) or f"0.0.0.0:{JOB_PORT}"
        self.callback = (os.environ.get(ENV_CALLBACK_URL) or "").rstrip("/")
        self.max_input_bytes = settings.grading.max_submission_bytes
        self.max_file_bytes = settings.grading.max_file_bytes
        self.limits = limits
        self.courses_dir = getattr(settings, "courses_dir", None)
        self._batch, self._core = batch, core
        self._inbox = inbox
        if inbox is None and os.environ.get(ENV_LISTEN):
            self.inbox()  # in the worker pod: listen from the start (the readiness probe checks it)

    def _apis(self):
        if self._batch is None:
            from kubernetes import config as kconfig

            try:
                kconfig.load_incluster_config()
            except kconfig.ConfigException:
                kconfig.load_kube_config()
            self._batch, self._core = k8s.BatchV1Api(), k8s.CoreV1Api()
        return self._batch, self._core

    def inbox(self) -> JobInbox:
        if self._inbox is None:
            self._inbox = JobInbox(self.listen)
            if not self.callback:
                self.callback = f"http://127.0.0.1:{self._inbox.port}"
        return self._inbox

    def too_big(self, job: SubmissionJob) -> str:
        """Why this submission exceeds the limits the service accepted it under ('' if it does not)."""
        sizes = {rel: len(b) for rel, b in job.files.items()} | {f"{n}.ipynb": len(t.encode())
                                                                 for n, t in job.notebooks.items()}
        big = sorted(rel for rel, n in sizes.items() if n > self.max_file_bytes)
        if big:
            return (f"{big[0]} has {sizes[big[0]]} bytes; files of at most {self.max_file_bytes} bytes are graded "
                    "(grading.max_file_bytes)")
        total = sum(sizes.values())
        if total > self.max_input_bytes:
            return (f"the submission has {total} bytes; at most {self.max_input_bytes} are graded "
                    "(grading.max_submission_bytes)")
        return ""

    def image_for(self, config: Config) -> str:
        course = str(config.get("CourseDirectory", {}).get("course_id", "") or "")
        return self.course_images.get(course, self.image)

    def data_for(self, config: Config) -> list[DataVolume]:
        """The course's volume datasets, from the catalog the worker's image carries."""
        course = str(config.get("CourseDirectory", {}).get("course_id", "") or "")
        return course_data_volumes(self.courses_dir, course) if self.courses_dir else []

    def sanitized(self, job: SubmissionJob, index: SourceIndex, config: Config) -> dict[str, str]:
        out = {}
        for name in [n for n in index.notebooks if n in job.notebooks]:
            res = steps.resources_for(job.student, job.assignment, name, index)
            out[name] = steps.sanitize(job.notebooks[name], res, config)
        return out

    def objects(self, job: SubmissionJob, index: SourceIndex, config: Config, *, job_id: str = "",
                token: str = "") -> tuple[dict, k8s.V1Job]:
        """(the pod's input, the Job) for one submission."""
        job_id = job_id or uuid.uuid4().hex[:16]
        payload = job_input(job, self.sanitized(job, index, config), self.limits, config)
        kjob = grader_job(f"autograde-{job_id}", self.namespace, self.image_for(config), self.limits,
                          job_id=job_id, job_url=f"{self.callback}/jobs/{job_id}", token=token or "unset",
                          service_account=self.service_account, data=self.data_for(config))
        return payload, kjob

    def grade(self, job: SubmissionJob, index: SourceIndex, config: Config) -> SubmissionResult:
        problem = job.invalid or self.too_big(job)  # the student's files: a status of their own, as locally
        if problem:
            return SubmissionResult(job.student, job.assignment, "invalid", seconds=0.0, error=problem)
        batch, core = self._apis()
        inbox = self.inbox()
        t0 = time.monotonic()
        job_id = uuid.uuid4().hex[:16]
        payload, _ = self.objects(job, index, config, job_id=job_id, token="-")
        slot = inbox.open(job_id, payload)
        kjob = grader_job(f"autograde-{job_id}", self.namespace, self.image_for(config), self.limits,
                          job_id=job_id, job_url=f"{self.callback}/jobs/{job_id}", token=slot.token,
                          service_account=self.service_account, data=self.data_for(config))
        name = kjob.metadata.name
        try:
            batch.create_namespaced_job(self.namespace, kjob)
            condition = self._watch(batch, name, kjob.spec.active_deadline_seconds + 120, slot)
            self._check_infra(core, job_id, condition, slot)
            return self.result_from_outputs(job, index, config, slot.results, time.monotonic() - t0)
        finally:
            inbox.close_slot(job_id)
            try:
                batch.delete_namespaced_job(name, self.namespace, propagation_policy="Background")
            except k8s.ApiException as e:
                if e.status != 404:
                    log.warning("autograde job %s: delete failed (%s); its TTL removes it", name, e.status)

    def _watch(self, batch, name: str, timeout: float, slot: JobSlot) -> str:
        """Watch the Job until it completes or fails; its terminal condition type (or "")."""
        from kubernetes import watch

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            w = watch.Watch()
            for event in w.stream(batch.list_namespaced_job, self.namespace, field_selector=f"metadata.name={name}",
                                  timeout_seconds=int(min(60, max(1, deadline - time.monotonic())))):
                status = event["object"].status
                for cond in (status.conditions or []) if status else []:
                    if cond.status == "True" and cond.type in ("Complete", "Failed"):
                        w.stop()
                        return f"{cond.type}:{cond.reason or ''}"
        return "" if not slot.done.is_set() else "Complete:"

    def _check_infra(self, core, job_id: str, condition: str, slot: JobSlot) -> None:
        """Raise InfraError unless the pod ran the submission (to its end, or until the student's
        code used up the memory limit)."""
        if slot.done.is_set() or (slot.results and set(slot.payload_names) <= set(slot.results)):
            return
        pods = core.list_namespaced_pod(self.namespace, label_selector=f"{JOB_LABEL}={job_id}").items
        reasons = []
        for pod in pods:
            st = pod.status
            for cond in (st.conditions or []) if st else []:
                if cond.type == "DisruptionTarget" and cond.status == "True":
                    reasons.append(f"pod {cond.reason or 'disrupted'}")
            if st and st.reason:
                reasons.append(f"pod {st.reason}")
            for cs in (st.container_statuses or []) if st else []:
                term = cs.state.terminated if cs.state else None
                if term is not None and term.reason == "OOMKilled" and slot.fetched:
                    return  # the student's code used up the memory: grade what finished
        if not slot.fetched:
            reasons.append("the pod never started grading")
        raise InfraError(f"autograde job {job_id}: no result ({condition or 'no terminal condition'}; "
                         f"{', '.join(reasons) or 'the pod returned nothing'}); retried")

    @staticmethod
    def result_from_outputs(job: SubmissionJob, index: SourceIndex, config: Config, got: dict[str, dict],
                            seconds: float = 0.0) -> SubmissionResult:
        """Score the pod's notebooks outside the pod. A notebook the pod did not return (killed by
        its memory limit or the submission's deadline) is not run: all its tests fail."""
        from .execute import INCOMPLETE, mark_unfinished

        infra = [str(d.get("infra")) for d in got.values() if isinstance(d, dict) and d.get("infra")]
        if infra:
            raise InfraError(f"the grader pod failed: {infra[0]}; retried")
        result = SubmissionResult(job.student, job.assignment, "graded", seconds=seconds)
        for name in [n for n in index.notebooks if n in job.notebooks]:
            # Our own sanitized copy decides sources and metadata (points!); the pod only supplies
            # outputs, cell by cell. A notebook whose shape changed, or that is missing, did not run.
            res_s = steps.resources_for(job.student, job.assignment, name, index)
            nb = nbformat.reads(steps.sanitize(job.notebooks[name], res_s, config), as_version=4)
            ran = None
            line = got.get(name) if isinstance(got.get(name), dict) else None
            if line is not None:
                try:
                    ran = nbformat.reads(line["notebook"], as_version=4)
                except Exception:  # noqa: BLE001 - the pod's output is untrusted
                    ran = None
            if ran is not None and len(ran.cells) == len(nb.cells):
                for mine, theirs in zip(nb.cells, ran.cells, strict=True):
                    if mine.cell_type == "code":
                        mine.outputs = [o for o in theirs.get("outputs", []) if isinstance(o, dict)]
                        mine.execution_count = theirs.get("execution_count")
                status, reason = str(line.get("status", INCOMPLETE)), str(line.get("reason", ""))
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
        if self._inbox is not None:
            self._inbox.close()
            self._inbox = None


def safe_label(value: str) -> str:
    """A label value (<= 63 chars) from any text."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", value)[:63].strip("-_.")
