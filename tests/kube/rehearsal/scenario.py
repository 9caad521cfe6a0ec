"""The deployment rehearsal's driver, run inside a private network namespace by
tests/kube/rehearsal/test_rehearsal.py:

    python -m kube.rehearsal.scenario WORKDIR     (PYTHONPATH=tests)

WORKDIR/rehearsal.json holds what `helm template` rendered. Everything is "installed" into the
Kubernetes API double; the hub, proxy, grading service and worker Deployments each get one pod
that the kubelet double runs; then the teaching loop runs through them and every step is written
to WORKDIR/report.json (so a failure says which step broke and shows the logs).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import nbformat
import requests

from .apidouble import RESOURCES, ApiDouble, Store
from .kubelet import Image, Kubelet

NS = "coursehub"
COURSE = "demo-101"
API_PORT = 6443
DEPLOYMENTS = ("proxy", "hub", "coursehub-grading", "coursehub-grading-worker")


class Report:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict = {"steps": {}, "facts": {}}

    @contextmanager
    def step(self, name: str):
        t0 = time.monotonic()
        try:
            yield
        except Exception as e:
            self.data["steps"][name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                        "trace": traceback.format_exc()[-3000:]}
            self.write()
            raise
        self.data["steps"][name] = {"ok": True, "seconds": round(time.monotonic() - t0, 1)}
        self.write()

    def fact(self, key: str, value) -> None:
        self.data["facts"][key] = value
        self.write()

    def write(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=1, default=str))


def make_cert(folder: Path) -> tuple[Path, Path]:
    """A self-signed serving certificate for the API double (also its CA)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("kubernetes.default.svc"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "ca.crt", folder / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def install(store: Store, objects: list[dict]) -> None:
    """`helm install` into the double (hooks are stored, never run: the rehearsal has no images to pull)."""
    for obj in objects:
        if obj["kind"] not in RESOURCES:
            continue  # custom resources (the ServiceMonitor): read from rehearsal.json by their steps
        resource = RESOURCES[obj["kind"]]
        obj["metadata"]["annotations"] = {**(obj["metadata"].get("annotations") or {}), "rehearsal/installed": "yes"}
        store.create(resource, obj["metadata"].get("namespace") or NS, obj, hooks=False)


def start_deployment(store: Store, name: str) -> None:
    dep = store.get("deployments", NS, name)
    assert dep is not None, f"the chart renders no Deployment {name!r}"
    template = dep["spec"]["template"]
    store.create("pods", NS, {"apiVersion": "v1", "kind": "Pod",
                              "metadata": {"name": f"{name}-rehearsal", "labels": template["metadata"].get("labels", {})},
                              "spec": template["spec"]})


def wait_for(what: str, check, timeout: float, interval: float = 0.5, logs: list[Path] = ()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    tails = "".join(f"\n--- {p.name}:\n{p.read_text(errors='replace')[-2500:]}" for p in logs if p.exists())
    raise TimeoutError(f"{what}: not within {timeout:.0f}s{tails}")


def secret_value(store: Store, name: str, key: str) -> str:
    obj = store.get("secrets", NS, name)
    if key in (obj.get("data") or {}):
        return base64.b64decode(obj["data"][key]).decode()
    return obj["stringData"][key]


class Hub:
    def __init__(self, token: str, logs: list[Path]) -> None:
        self.url = "http://hub:8081/hub/api"
        self.headers = {"Authorization": f"token {token}"}
        self.logs = logs

    def call(self, method: str, path: str, ok=(200, 201, 202, 204, 409), **kw) -> requests.Response:
        r = requests.request(method, self.url + path, headers=self.headers, timeout=30, **kw)
        if r.status_code not in ok:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text[:500]}")
        return r

    def add_user(self, name: str, group: str) -> None:
        self.call("POST", f"/users/{name}")
        self.call("POST", f"/groups/{group}")
        self.call("POST", f"/groups/{group}/users", json={"users": [name]})

    def spawn(self, name: str) -> None:
        self.call("POST", f"/users/{name}/server", ok=(201, 202), json={"profile": COURSE})

        def ready():
            server = self.call("GET", f"/users/{name}").json().get("servers", {}).get("", {})
            if not server:
                raise RuntimeError(f"the spawn of {name} failed (see the hub log)\n"
                                   + self.logs[0].read_text(errors="replace")[-3000:])
            return server.get("ready")

        wait_for(f"{name}'s server", ready, 90, logs=self.logs)


def server_of(kubelet: Kubelet, store: Store, user: str) -> tuple[dict, dict, str, dict]:
    """(pod object, its env as started, server URL, auth header with the server's own token)."""
    (pod,) = [p for p in store.list("pods", NS, "component=singleuser-server")
              if (p["metadata"].get("annotations") or {}).get("hub.jupyter.org/username") == user]
    running = kubelet.pods[(NS, pod["metadata"]["name"])]
    env = running.env
    url = f"http://{running.ip}:8888{env['JUPYTERHUB_SERVICE_PREFIX']}"
    return pod, env, url, {"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"}


def scrape_as_service_monitor(store: Store, objects: list[dict]) -> dict:
    """What Prometheus does with the rendered ServiceMonitor: find the Service it selects, read the
    bearer token from the Secret it names, and scrape the endpoint's path on the named port."""
    (sm,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    (endpoint,) = sm["spec"]["endpoints"]
    selector = sm["spec"]["selector"]["matchLabels"]
    (service,) = [s for s in store.list("services", NS)
                  if set(selector.items()) <= set((s["metadata"].get("labels") or {}).items())]
    port = next(p["port"] for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    cred = endpoint["authorization"]["credentials"]
    token = secret_value(store, cred["name"], cred["key"])
    url = f"{endpoint.get('scheme', 'http')}://{service['metadata']['name']}:{port}{endpoint['path']}"
    r = requests.get(url, headers={"Authorization": f"{endpoint['authorization']['type']} {token}"}, timeout=30)
    return {"url": url, "status": r.status_code, "series": "coursehub_grading_queue_jobs" in r.text,
            "without_token": requests.get(url, timeout=30).status_code}


def tool_key_facts(store: Store) -> dict:
    """The key ids the hub serves at /hub/lti13/jwks (what LMSs trust), and the id of the key in the
    Secret the chart renders: the hub must sign with the Secret's key, not one it made itself."""
    from cryptography.hazmat.primitives import serialization

    from coursehub.platform.kube import names
    from coursehub.platform.lti.keys import thumbprint

    jwks = requests.get("http://hub:8081/hub/lti13/jwks", timeout=30).json()
    pem = secret_value(store, names.TOOL_KEY_SECRET, names.TOOL_KEY_SECRET_KEY).encode()
    key = serialization.load_pem_private_key(pem, password=None)
    return {"served": [k["kid"] for k in jwks["keys"]], "secret": thumbprint(key)}


def ok_json(r: requests.Response, what: str) -> dict:
    if r.status_code >= 400:
        raise RuntimeError(f"{what}: HTTP {r.status_code}: {r.text[:1500]}")
    data = r.json()
    if isinstance(data, dict) and data.get("success") is False:
        raise RuntimeError(f"{what}: {json.dumps(data)[:3000]}")
    return data


def main(workdir: Path) -> int:
    cfg = json.loads((workdir / "rehearsal.json").read_text())
    report = Report(workdir / "report.json")
    cluster = workdir / "cluster"
    cluster.mkdir(exist_ok=True)
    cert, key = make_cert(workdir)
    store = Store()
    install(store, cfg["objects"])
    api = ApiDouble(store, str(cert), str(key), port=API_PORT)
    api.start()
    images = {ref: Image(**spec) for ref, spec in cfg["images"].items()}
    kubelet = Kubelet(store, cluster, images, "127.0.0.1", API_PORT, cert, api.issue_token)
    # Chaos for the first grading Job: its pod is preempted (Kubernetes replaces it: podFailurePolicy),
    # then the replacement exits without returning anything (the queue must retry, not grade 0).
    kubelet.disrupt_next_job_pods = ["PreemptionByScheduler"]
    kubelet.exit_without_result_next = 1
    # and every Job pod waits 7 minutes for a node (a deadline rush): Pending time is not grading time
    kubelet.job_pending_seconds = 420
    logs = cluster / "logs"
    hub_log = logs / f"{NS}_hub-rehearsal.log"
    all_logs = [hub_log, logs / f"{NS}_coursehub-grading-rehearsal.log",
                logs / f"{NS}_coursehub-grading-worker-rehearsal.log", logs / f"{NS}_proxy-rehearsal.log"]
    try:
        with report.step("deployments start"):
            for name in DEPLOYMENTS:
                start_deployment(store, name)
            wait_for("the hub API", lambda: _get("http://hub:8081/hub/api") == 200, 60, logs=all_logs)
            wait_for("the grading service", lambda: _get("http://coursehub-grading:8090/services/grading/health")
                     == 200, 60, logs=all_logs)
        hub = Hub(secret_value(store, "hub", "hub.services.rehearsal.apiToken"), all_logs)
        report.fact("hub_services", sorted(hub.call("GET", "/services").json()))
        # what the operator's Prometheus and the LMSs rely on; recorded, never stopping the teaching loop
        for name, fact, check in (("metrics scrape", "metrics", lambda: scrape_as_service_monitor(store, cfg["objects"])),
                                  ("lti tool key", "tool_key", lambda: tool_key_facts(store))):
            try:
                with report.step(name):
                    report.fact(fact, check())
            except Exception:  # noqa: BLE001, S112 - the step's error is in the report
                continue
        with report.step("spawn student"):
            hub.add_user("stud", f"course:{COURSE}:student")
            hub.spawn("stud")
        with report.step("spawn instructor"):
            hub.add_user("prof", f"course:{COURSE}:instructor")
            hub.spawn("prof")
        stud_pod, stud_env, stud_url, stud = server_of(kubelet, store, "stud")
        prof_pod, prof_env, prof_url, prof = server_of(kubelet, store, "prof")
        report.fact("user_env", {k: v for k, v in prof_env.items() if k.startswith("COURSEHUB_")})
        report.fact("server_commands", [kubelet.pods[(NS, p["metadata"]["name"])].command[:4]
                                        for p in (stud_pod, prof_pod)])
        report.fact("instructor_mounts", [m["mountPath"] for m in prof_pod["spec"]["containers"][0]["volumeMounts"]])
        report.fact("student_mounts", [m["mountPath"] for m in stud_pod["spec"]["containers"][0]["volumeMounts"]])
        with report.step("release"):
            for step in ("assign", "release"):
                ok_json(requests.post(f"{prof_url}formgrader/api/assignment/ps1/{step}", headers=prof, timeout=120),
                        f"formgrader {step}")
        with report.step("fetch"):
            ok_json(requests.post(f"{stud_url}assignments/fetch", headers=stud, timeout=120,
                                  data={"course_id": COURSE, "assignment_id": "ps1"}), "fetch")
        with report.step("submit"):
            from support import samples

            nbs = {}
            for name in ("part1", "part2"):
                model = ok_json(requests.get(f"{stud_url}api/contents/{COURSE}/ps1/{name}.ipynb", headers=stud,
                                             timeout=30), f"read {name}")
                nbs[name] = nbformat.from_dict(model["content"])
            for name, nb in samples.correct(nbs).items():
                ok_json(requests.put(f"{stud_url}api/contents/{COURSE}/ps1/{name}.ipynb", headers=stud, timeout=30,
                                     json={"type": "notebook", "format": "json", "content": nb}), f"save {name}")
            ok_json(requests.post(f"{stud_url}assignments/submit", headers=stud, timeout=120,
                                  data={"course_id": COURSE, "assignment_id": "ps1"}), "submit")
        with report.step("collect"):
            ok_json(requests.post(f"{prof_url}formgrader/api/assignment/ps1/collect", headers=prof, timeout=120),
                    "collect")
        with report.step("autograde"):
            from nbgrader.api import Gradebook, MissingEntry

            course_dir = cluster / "pv" / NS / f"coursehub-course-{COURSE}"
            report.fact("course_dir_files", sorted(str(p.relative_to(course_dir)) for p in course_dir.rglob("*")
                                                   if p.is_file() and ".ipynb_checkpoints" not in str(p))[:60])

            def graded():
                if not (course_dir / "autograded" / "stud" / "ps1").is_dir():
                    return None
                with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id=COURSE) as gb:
                    try:
                        sub = gb.find_submission("ps1", "stud")
                    except MissingEntry:
                        return None
                    return {"score": sub.score, "max_score": sub.max_score}

            report.fact("gradebook", wait_for("the grade in the gradebook", graded, 150, interval=2, logs=all_logs))
    except Exception:  # noqa: BLE001 - recorded in the report; the test reads it
        report.fact("failed", True)
    finally:
        report.fact("audit", [{"user": a.user, "verb": a.request.verb, "group": a.request.group,
                               "resource": a.request.full_resource, "namespace": a.request.namespace,
                               "allowed": a.allowed, "code": a.code} for a in api.audit])
        created = [(kind, key, obj) for _, kind, key, obj in store.events if kind == "ADDED"]
        report.fact("created", [{"resource": r, "namespace": ns, "name": n, "object": obj}
                                for _, (r, ns, n), obj in created
                                if r in ("jobs", "pods", "configmaps", "persistentvolumeclaims", "secrets")
                                and (obj["metadata"].get("annotations") or {}).get("rehearsal/installed") != "yes"])
        report.fact("job_conditions", [c for _, kind, (r, _, _), obj in store.events if r == "jobs"
                                       for c in (obj.get("status") or {}).get("conditions") or []])
        report.fact("pod_status", {f"{ns}/{n}": obj.get("status", {}) for (r, ns, n), obj in store.objects.items()
                                   if r == "pods"})
        report.fact("logs", {p.name: p.read_text(errors="replace")[-4000:] for p in logs.glob("*.log")})
        kubelet.stop_all()
        api.stop()
    return 0


def _get(url: str) -> int:
    try:
        return requests.get(url, timeout=3).status_code
    except requests.RequestException:
        return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
