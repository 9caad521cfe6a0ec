"""Kubelet and Job-controller doubles for the rehearsal: run a pod's container locally, as its spec
says, in a bubblewrap sandbox that gives it the pod's filesystem view.

For each pod: its volumes (ConfigMap and Secret data from the API double's store, emptyDirs, a
folder per PersistentVolumeClaim, the projected service-account token unless automount is off)
are bind-mounted at the container's mountPaths (subPath, readOnly); the environment is built from
env/valueFrom (fieldRef, secretKeyRef, configMapKeyRef) with $(VAR) expansion and the Service
links a kubelet adds; the command and args run with the container's workingDir and runAsUser.
An image is a local Python environment (`Image`): what the rehearsal cannot build (container
images) it replaces with this checkout's virtualenvs, and says so.

All pods share one network namespace (the rehearsal's): each gets its own loopback address as pod
IP, and `0.0.0.0` in a user server's JUPYTERHUB_SERVICE_URL becomes that address so two servers can
both use 8888 (the other pods use distinct ports and are reached through /etc/hosts at 127.0.0.1).
"""

from __future__ import annotations

import base64
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .apidouble import Store, now


@dataclass
class Image:
    """What an image provides here: PATH entries, its default entrypoint/cmd, files baked in."""

    path: list[str]
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)  # path in the image -> host path
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"


@dataclass
class RunningPod:
    namespace: str
    name: str
    ip: str
    proc: subprocess.Popen | None = None
    log: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    command: list[str] = field(default_factory=list)


class Kubelet:
    def __init__(self, store: Store, root: Path, images: dict[str, Image], api_host: str, api_port: int,
                 ca_file: Path, issue_token, *, sandbox_prefix: list[str] | None = None) -> None:
        self.store, self.root, self.images = store, root, images
        self.api_host, self.api_port, self.ca_file, self.issue_token = api_host, api_port, ca_file, issue_token
        self.pods: dict[tuple[str, str], RunningPod] = {}
        self.ips = (f"127.0.0.{n}" for n in itertools.count(10))
        self.lock = threading.Lock()
        #: Job pods to fail instead of run, by reason: the chaos the rehearsal injects.
        self.disrupt_next_job_pods: list[str] = []
        self.exit_without_result_next: int = 0
        #: Seconds every Job pod is taken to have waited for a node (a deadline rush scaling up):
        #: a Job whose activeDeadlineSeconds is shorter fails with DeadlineExceeded, never running.
        self.job_pending_seconds: int = 0
        store.on_create.append(self._created)
        store.on_delete.append(self._deleted)

    # ---- controllers ------------------------------------------------------------------------

    def _created(self, resource: str, obj: dict) -> None:
        if resource == "pods":
            threading.Thread(target=self._run_pod, args=(obj,), daemon=True).start()
        elif resource == "jobs":
            self._job_pod(obj)

    def _deleted(self, resource: str, obj: dict) -> None:
        ns, name = obj["metadata"].get("namespace", ""), obj["metadata"]["name"]
        if resource == "pods":
            self.stop(ns, name)
        elif resource == "jobs":
            for pod in self.store.list("pods", ns, f"job-name={name}"):
                self.store.delete("pods", ns, pod["metadata"]["name"])

    def _job_pod(self, job: dict) -> None:
        """The Job controller's part: one pod from the template (replaced if disrupted)."""
        meta, template = job["metadata"], job["spec"]["template"]
        labels = {**(template.get("metadata", {}).get("labels") or {}), "job-name": meta["name"],
                  "controller-uid": meta["uid"]}
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"generateName": f"{meta['name']}-", "labels": labels,
                            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"],
                                                 "uid": meta["uid"], "controller": True}]},
               "spec": template["spec"]}
        self.store.create("pods", meta["namespace"], pod)

    def _deadline_passed_while_pending(self, ns: str, pod: dict) -> bool:
        owner = next((o for o in pod["metadata"].get("ownerReferences", []) if o["kind"] == "Job"), None)
        job = self.store.get("jobs", ns, owner["name"]) if owner else None
        deadline = (job or {}).get("spec", {}).get("activeDeadlineSeconds")
        if not deadline or self.job_pending_seconds < deadline:
            return False
        name = pod["metadata"]["name"]
        self.store.set_status("pods", ns, name, {"phase": "Failed", "reason": "DeadlineExceeded"})
        cond = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded", "lastTransitionTime": now()}
        self.store.set_status("jobs", ns, owner["name"], {"failed": 1, "conditions": [cond]})
        return True

    def _job_pod_finished(self, ns: str, pod: dict, phase: str, disrupted: bool) -> None:
        owner = next((o for o in pod["metadata"].get("ownerReferences", []) if o["kind"] == "Job"), None)
        if owner is None:
            return
        job = self.store.get("jobs", ns, owner["name"])
        if job is None:
            return
        rules = (job["spec"].get("podFailurePolicy") or {}).get("rules", [])
        ignore = disrupted and any(r.get("action") == "Ignore" and any(
            p.get("type") == "DisruptionTarget" for p in r.get("onPodConditions", [])) for r in rules)
        if ignore:  # not counted: the controller makes a new pod
            self._job_pod(job)
            return
        if phase == "Succeeded":
            cond = {"type": "Complete", "status": "True", "lastTransitionTime": now()}
            self.store.set_status("jobs", ns, owner["name"], {"succeeded": 1, "conditions": [cond]})
        else:
            reason = "PodFailurePolicy" if disrupted else "BackoffLimitExceeded"
            cond = {"type": "Failed", "status": "True", "reason": reason, "lastTransitionTime": now()}
            self.store.set_status("jobs", ns, owner["name"], {"failed": 1, "conditions": [cond]})

    # ---- pods ---------------------------------------------------------------------------------

    def image_for(self, ref: str) -> Image | None:
        name = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
        for prefix, image in self.images.items():
            if name == prefix or (prefix.endswith("*") and name.startswith(prefix[:-1])):
                return image
        return None

    def _secret_data(self, ns: str, name: str) -> dict[str, bytes] | None:
        obj = self.store.get("secrets", ns, name)
        if obj is None:
            return None
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return data

    def _configmap_data(self, ns: str, name: str) -> dict[str, bytes] | None:
        obj = self.store.get("configmaps", ns, name)
        if obj is None:
            return None
        return {k: v.encode() for k, v in (obj.get("data") or {}).items()}

    def _volume_dir(self, ns: str, pod: str, vol: dict, spec: dict) -> Path:
        base = self.root / "volumes" / ns / pod / vol["name"]
        if "persistentVolumeClaim" in vol:
            claim = vol["persistentVolumeClaim"]["claimName"]
            if self.store.get("persistentvolumeclaims", ns, claim) is None:
                raise RuntimeError(f'persistentvolumeclaim "{claim}" not found')
            path = self.root / "pv" / ns / claim
            path.mkdir(parents=True, exist_ok=True)
            return path
        if "emptyDir" in vol:
            base.mkdir(parents=True, exist_ok=True)
            return base
        src = vol.get("secret") or vol.get("configMap")
        if src is not None:
            if "secret" in vol:
                data = self._secret_data(ns, src["secretName"])
            else:
                data = self._configmap_data(ns, src["name"])
            if data is None:
                raise RuntimeError(f"{'secret' if 'secret' in vol else 'configmap'} of volume {vol['name']} not found")
            items = src.get("items") or [{"key": k, "path": k} for k in data]
            base.mkdir(parents=True, exist_ok=True)
            for item in items:
                dest = base / item["path"]
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data[item["key"]])
            return base
        raise RuntimeError(f"volume type of {vol['name']} is not supported by the kubelet double")

    def _token_dir(self, ns: str, pod: str, spec: dict) -> Path | None:
        sa_name = spec.get("serviceAccountName") or "default"
        sa = self.store.get("serviceaccounts", ns, sa_name) or {}
        automount = spec.get("automountServiceAccountToken", sa.get("automountServiceAccountToken", True))
        if automount is False:
            return None
        d = self.root / "volumes" / ns / pod / "kube-api-access"
        d.mkdir(parents=True, exist_ok=True)
        (d / "token").write_text(self.issue_token(ns, sa_name))
        (d / "namespace").write_text(ns)
        shutil.copy(self.ca_file, d / "ca.crt")
        return d

    def _env(self, ns: str, pod: dict, container: dict, ip: str, image: Image) -> dict[str, str]:
        env = {"PATH": os.pathsep.join([*image.path, "/usr/local/bin", "/usr/bin", "/bin"]),
               "HOSTNAME": pod["metadata"]["name"], "LANG": "C.UTF-8", **image.env,
               "KUBERNETES_SERVICE_HOST": self.api_host, "KUBERNETES_SERVICE_PORT": str(self.api_port)}
        if pod["spec"].get("enableServiceLinks", True):
            for svc in self.store.list("services", ns):
                prefix = svc["metadata"]["name"].upper().replace("-", "_")
                ports = svc["spec"].get("ports") or []
                if ports:
                    env[f"{prefix}_SERVICE_HOST"] = "127.0.0.1"
                    env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
                    for p in ports:
                        if p.get("name"):
                            env[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        fields = {"metadata.namespace": ns, "metadata.name": pod["metadata"]["name"], "status.podIP": ip,
                  "spec.serviceAccountName": pod["spec"].get("serviceAccountName", "default")}
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
            elif "valueFrom" in item:
                vf = item["valueFrom"]
                if "fieldRef" in vf:
                    env[item["name"]] = fields[vf["fieldRef"]["fieldPath"]]
                elif "secretKeyRef" in vf or "configMapKeyRef" in vf:
                    ref = vf.get("secretKeyRef") or vf["configMapKeyRef"]
                    data = (self._secret_data(ns, ref["name"]) if "secretKeyRef" in vf
                            else self._configmap_data(ns, ref["name"]))
                    if data is None or ref["key"] not in data:
                        if ref.get("optional"):
                            continue
                        raise RuntimeError(f"env {item['name']}: {ref['name']}/{ref['key']} not found")
                    env[item["name"]] = data[ref["key"]].decode()
            else:
                env[item["name"]] = ""
        user_server = (pod["metadata"].get("labels") or {}).get("component") == "singleuser-server"
        if user_server and "JUPYTERHUB_SERVICE_URL" in env:  # one network namespace: bind the pod IP
            env["JUPYTERHUB_SERVICE_URL"] = env["JUPYTERHUB_SERVICE_URL"].replace("0.0.0.0", ip)
        return env

    def sandbox_command(self, ns: str, pod: dict, container: dict, image: Image, token_dir: Path | None
                        ) -> list[str]:
        spec, name = pod["spec"], pod["metadata"]["name"]
        ctx = {**(spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
        uid, gid = ctx.get("runAsUser", 0), ctx.get("runAsGroup", ctx.get("runAsUser", 0))
        args = ["bwrap", "--dev-bind", "/", "/", "--die-with-parent"]
        if uid:
            args += ["--unshare-user", "--uid", str(uid), "--gid", str(gid)]
        workdir = container.get("workingDir") or image.workdir
        if workdir != "/":
            args += ["--dir", workdir]  # the image has it
        for path, host in image.files.items():
            args += ["--ro-bind", host, path]
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        # like containerd: parents before children, whatever order the spec lists them in
        mounts = sorted(container.get("volumeMounts") or [], key=lambda m: m["mountPath"].rstrip("/").count("/"))
        for m in mounts:
            src = self._volume_dir(ns, name, volumes[m["name"]], spec)
            if m.get("subPath"):
                src = src / m["subPath"]
                if "persistentVolumeClaim" in volumes[m["name"]] or "emptyDir" in volumes[m["name"]]:
                    src.mkdir(parents=True, exist_ok=True)
            args += ["--ro-bind" if m.get("readOnly") else "--bind", str(src), m["mountPath"].rstrip("/") or "/"]
        # The "image" is this checkout's virtualenvs (and its source, installed editable): a volume mounted
        # over a folder that holds them (an emptyDir at /tmp when the checkout is under /tmp) must not
        # hide them, as it would not hide files baked into a real image.
        for root in sorted({str(Path(p).resolve().parent.parent) for p in image.path}):
            if any(Path(root).is_relative_to(m["mountPath"]) for m in mounts):
                args += ["--ro-bind", root, root]
        if token_dir is not None:
            # /var/run is a link to /run here; bwrap does not follow links in mount targets
            args += ["--ro-bind", str(token_dir), "/run/secrets/kubernetes.io/serviceaccount"]
        args += ["--chdir", workdir]
        return args

    def _run_pod(self, pod: dict) -> None:
        ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
        ip = next(self.ips)
        running = RunningPod(ns, name, ip, log=self.root / "logs" / f"{ns}_{name}.log")
        running.log.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            self.pods[(ns, name)] = running
        is_job = "job-name" in (pod["metadata"].get("labels") or {})
        if is_job and self.disrupt_next_job_pods:
            reason = self.disrupt_next_job_pods.pop(0)
            self.store.set_status("pods", ns, name, {"phase": "Failed", "reason": reason, "conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": reason, "lastTransitionTime": now()}]})
            self._job_pod_finished(ns, pod, "Failed", disrupted=True)
            return
        if is_job and self._deadline_passed_while_pending(ns, pod):
            return
        (container,) = pod["spec"]["containers"][:1]
        image = self.image_for(container["image"])
        if image is None:
            self.store.set_status("pods", ns, name, {"phase": "Pending", "containerStatuses": [{
                "name": container["name"], "ready": False,
                "state": {"waiting": {"reason": "ErrImagePull", "message": f"no such image here: {container['image']}"}}}]})
            return
        try:
            env = self._env(ns, pod, container, ip, image)
            token_dir = self._token_dir(ns, name, pod["spec"])
            prefix = self.sandbox_command(ns, pod, container, image, token_dir)
        except RuntimeError as e:  # what kubelet reports as CreateContainerConfigError
            self.store.set_status("pods", ns, name, {"phase": "Pending", "containerStatuses": [{
                "name": container["name"], "ready": False,
                "state": {"waiting": {"reason": "CreateContainerConfigError", "message": str(e)}}}]})
            return
        command = [expand(a, env) for a in (container.get("command") or image.entrypoint)]
        command += [expand(a, env) for a in (container.get("args") or ([] if container.get("command") else image.cmd))]
        if is_job and self.exit_without_result_next:
            self.exit_without_result_next -= 1
            command = ["python", "-c", "print('killed before it could report')"]
        running.env, running.command = env, command
        with running.log.open("ab") as log:
            running.proc = subprocess.Popen([*prefix, "--", *command], env=env, stdout=log, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        ports = [p["containerPort"] for p in container.get("ports") or []]
        started = now()
        while running.proc.poll() is None and ports and not all(_listening(ip, p) for p in ports):
            time.sleep(0.2)
        if running.proc.poll() is None:
            self.store.set_status("pods", ns, name, {
                "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1", "startTime": started,
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": container["name"], "ready": True, "restartCount": 0,
                                       "image": container["image"], "imageID": "", "started": True,
                                       "state": {"running": {"startedAt": started}}}]})
        code = running.proc.wait()
        if self.store.get("pods", ns, name) is None:
            return  # deleted
        phase = "Succeeded" if code == 0 else "Failed"
        self.store.set_status("pods", ns, name, {
            "phase": phase, "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [{"name": container["name"], "ready": False, "restartCount": 0,
                                   "image": container["image"], "imageID": "",
                                   "state": {"terminated": {"exitCode": code, "reason": "Completed" if code == 0
                                                            else "Error", "finishedAt": now()}}}]})
        if is_job:
            self._job_pod_finished(ns, self.store.get("pods", ns, name) or pod, phase, disrupted=False)

    def stop(self, ns: str, name: str) -> None:
        with self.lock:
            running = self.pods.pop((ns, name), None)
        if running is None or running.proc is None or running.proc.poll() is not None:
            return
        try:
            os.killpg(running.proc.pid, signal.SIGTERM)
            running.proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(running.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self) -> None:
        for ns, name in list(self.pods):
            self.stop(ns, name)


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion ($$ escapes; unknown names stay as written)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), value)


def _listening(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((ip, port)) == 0
