"""The deployment rehearsal: the chart, rendered by the real Helm from `coursehub helm-values`
output, deploys a coursehub whose teaching loop works.

One run (module fixture, ~1-2 minutes): z2jh's own jupyterhub_config.py and z2jh.py, from the
packaged chart's rendered ConfigMap and Secret mounted where the hub pod has them, load in a real
JupyterHub 5.5 process; KubeSpawner spawns a student and an instructor against the Kubernetes API
double (apidouble.py), which enforces the rendered RBAC per service account and keeps every object;
the kubelet double (kubelet.py) runs each pod's container locally with the pod's env, command,
mounts and user; release -> fetch -> submit -> collect go through the exchange with each server's
own token; the worker Deployment's pod creates the grading Job through the executor under the
rendered Role; the Job's pod runs the grader container's command; the score lands in the course
gradebook. Each test below checks one promise (and names the break from issue 11 it guards).

What only a real cluster shows is listed in docs/operators/deploy.md ("What the rehearsal does
not show"): scheduling and node affinity, NetworkPolicy enforcement, Pod Security admission,
quotas, image contents, storage classes, TLS and ingress.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from coursehub.platform.courses import load_catalog
from coursehub.platform.environments import ENVIRONMENT_VAR, course_environment_id
from coursehub.platform.environments_image import course_image
from coursehub.platform.kube import names
from coursehub.platform.kube.helm_values import render
from coursehub.platform.settings import load_settings

from .. import helm

REPO = Path(__file__).resolve().parents[3]
NS = "coursehub"
USER_IMAGE = "registry.example.edu/coursehub/user"
SITE_VALUES = {
    # The rehearsal's operator: a hub service with an admin-ish role, as a site file would add one.
    "jupyterhub": {"hub": {
        "services": {"rehearsal": {}},
        "loadRoles": {"rehearsal": {"services": ["rehearsal"],
                                    "scopes": ["admin:users", "admin:groups", "admin:servers", "list:users",
                                               "list:services", "read:services"]}},
    }},
}


def outer_sandbox(workdir: Path) -> list[str]:
    """bwrap: a private network namespace (only loopback), a private pid namespace, and empty /srv,
    /run, /home, /usr/local/etc and a copy of /etc (with our /etc/hosts) for the pods' mount points."""
    hosts = workdir / "hosts"
    hosts.write_text("127.0.0.1 localhost hub proxy-api proxy-public coursehub-grading coursehub-grading-worker "
                     "kubernetes.default.svc\n")
    args = ["bwrap", "--dev-bind", "/", "/", "--unshare-net", "--unshare-pid", "--die-with-parent"]
    if os.geteuid() == 0:
        args += ["--cap-add", "ALL"]  # the pods' own bwrap needs it inside (as root)
    args += ["--proc", "/proc", "--tmpfs", "/etc"]
    for entry in sorted(Path("/etc").iterdir()):
        if entry.name == "hosts":
            continue
        if entry.is_symlink():
            args += ["--symlink", os.readlink(entry), str(entry)]
        else:
            args += ["--ro-bind", str(entry), str(entry)]
    args += ["--ro-bind", str(hosts), "/etc/hosts", "--tmpfs", "/srv", "--tmpfs", "/run", "--tmpfs", "/home",
             "--tmpfs", "/usr/local/etc"]
    return args


DEMO_ENV_IMAGE = course_image(load_settings(), "demo-101", "ghcr.io/coursehub")


def images(courses: Path) -> dict[str, dict]:
    """Container images as this checkout's environments (hub and user servers: JupyterHub 5.5);
    the hub image bakes in the courses folder."""
    jh5, venv = str(REPO / ".venv-jh5" / "bin"), str(REPO / ".venv" / "bin")
    return {
        "ghcr.io/coursehub/hub": {"path": [jh5, venv], "files": {"/srv/coursehub/courses": str(courses)},
                                  "env": {"HOME": "/tmp"}, "workdir": "/srv/jupyterhub"},
        "quay.io/jupyterhub/configurable-http-proxy": {"path": [str(REPO / "node_modules" / ".bin")], "workdir": "/tmp"},
        USER_IMAGE: {"path": [jh5, venv], "env": {"HOME": "/home/jovyan", "NB_USER": "jovyan"},
                     "cmd": ["jupyterhub-singleuser"], "workdir": "/home/jovyan"},
        "ghcr.io/coursehub/grader*": {"path": [venv], "env": {"HOME": "/tmp"}, "workdir": "/tmp"},
        # demo-101's locked environment (`coursehub env image`): its servers and its grading Jobs. It
        # reports its lock with each submission, as the built image does (the worker checks parity
        # against the lock in the hub image's courses/: break: a mismatch, never graded)
        "ghcr.io/coursehub/coursehub-demo-101": {"path": [jh5, venv], "env": {
            "HOME": "/home/jovyan", "NB_USER": "jovyan",
            ENVIRONMENT_VAR: course_environment_id(courses / "demo-101")},
            "cmd": ["jupyterhub-singleuser"], "workdir": "/home/jovyan"},
    }


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> dict:
    if shutil.which("bwrap") is None:
        pytest.fail("the rehearsal needs bubblewrap (scripts/setup installs it)")
    work = tmp_path_factory.mktemp("rehearsal")
    courses = work / "courses"
    shutil.copytree(REPO / "courses", courses)
    course_yaml = courses / "demo-101" / "course.yaml"
    data = yaml.safe_load(course_yaml.read_text())
    data["environment"]["image"] = f"{USER_IMAGE}:2026.1"  # a coursehub user image (platform/images/user)
    course_yaml.write_text(yaml.safe_dump(data))
    settings_file = work / "settings.yaml"
    settings_file.write_text(yaml.safe_dump({"mode": "kubernetes", "hub": {"ip": "0.0.0.0"},
                                             "auth": {"dev_login": False}, "grading": {"executor": "kubernetes"}}))
    values = render(load_settings(settings_file), load_catalog(courses))
    (work / "values.generated.yaml").write_text(yaml.safe_dump(values))
    (work / "site.yaml").write_text(yaml.safe_dump(SITE_VALUES))
    chart = helm.build_chart(work / "chart")
    objects = helm.template(chart, [work / "values.generated.yaml", work / "site.yaml"], work / "chart" / "helm-home",
                            namespace=NS, api_versions=("monitoring.coreos.com/v1/ServiceMonitor",))
    (work / "rehearsal.json").write_text(json.dumps({"objects": objects, "images": images(courses)}))
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests"), "PYTHONUNBUFFERED": "1"}
    cmd = [*outer_sandbox(work), sys.executable, "-m", "kube.rehearsal.scenario", str(work)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420)
    report_file = work / "report.json"
    assert report_file.is_file(), f"the rehearsal did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    report = json.loads(report_file.read_text())
    report["objects"] = objects
    report["work"] = str(work)
    return report


def step(report: dict, name: str) -> None:
    got = report["steps"].get(name)
    assert got is not None, f"step {name!r} did not run: {failed_steps(report)}"
    assert got["ok"], f"step {name!r} failed: {got['error']}\n{got.get('trace', '')}"


def failed_steps(report: dict) -> str:
    bad = {k: v["error"] for k, v in report["steps"].items() if not v["ok"]}
    return json.dumps(bad, indent=1)[:6000]


def created(report: dict, resource: str, namespace: str | None = None) -> list[dict]:
    return [c["object"] for c in report["facts"].get("created", [])
            if c["resource"] == resource and (namespace is None or c["namespace"] == namespace)]


def job_pods(report: dict) -> list[dict]:
    return [p for p in created(report, "pods") if "job-name" in (p["metadata"].get("labels") or {})]


# ---- the teaching loop ----------------------------------------------------------------------


def test_hub_grading_service_and_worker_start_from_the_rendered_deployments(rehearsal):
    step(rehearsal, "deployments start")  # break: no worker Deployment


def test_student_and_instructor_servers_spawn(rehearsal):
    from coursehub.platform.userserver import POD_LAUNCH

    step(rehearsal, "spawn student")  # break: mem_guarantee 512Mi (TraitError on every spawn)
    step(rehearsal, "spawn instructor")
    # both servers started through coursehub's entry point (userserver.py), as the local spawner's do
    assert rehearsal["facts"]["server_commands"] == [["python3", "-c", POD_LAUNCH, "jupyterhub-singleuser"]] * 2


def test_user_servers_reach_the_grading_service_with_its_prefix(rehearsal):
    env = rehearsal["facts"]["user_env"]
    assert env["COURSEHUB_GRADING_URL"] == "http://coursehub-grading:8090/services/grading/"  # break: 404s
    assert env["COURSEHUB_STAFF_COURSES"] == "demo-101"  # break: missing in hub_setup
    assert "textbooks" in rehearsal["facts"]["hub_services"]  # break: no textbooks service on Kubernetes


def test_release_fetch_submit_collect_through_the_exchange(rehearsal):
    for name in ("release", "fetch", "submit", "collect"):  # breaks: 404 (prefix), 403 (access scope)
        step(rehearsal, name)


def test_instructor_servers_share_the_course_directory(rehearsal):
    claim = names.course_claim("demo-101")
    assert "/home/jovyan/courses/demo-101" in rehearsal["facts"]["instructor_mounts"]
    assert "/home/jovyan/courses/demo-101" not in rehearsal["facts"]["student_mounts"]
    pvcs = {p["metadata"]["name"] for p in rehearsal["objects"] if p["kind"] == "PersistentVolumeClaim"}
    assert claim in pvcs  # break: per-course shared storage not rendered


def test_the_worker_grades_the_submission_into_the_gradebook(rehearsal):
    step(rehearsal, "autograde")  # breaks: no worker, Role verbs, course dir invisible to the worker
    # correct answers: all 7 automatic points (the 3-point written answer waits for a person),
    # although the first Job's pod was preempted and its replacement returned nothing (break:
    # infrastructure failures graded as 0)
    assert rehearsal["facts"]["gradebook"] == {"score": 7.0, "max_score": 10.0}


# ---- what the cluster saw -------------------------------------------------------------------


def test_every_api_call_is_allowed_by_the_rendered_rbac(rehearsal):
    denied = [a for a in rehearsal["facts"]["audit"] if not a["allowed"]]
    assert not denied, denied  # break: the autograde Role lacked verbs the executor uses
    users = {a["user"] for a in rehearsal["facts"]["audit"]}
    worker = f"system:serviceaccount:{NS}:{names.WORKER_SERVICE_ACCOUNT}"
    assert users == {f"system:serviceaccount:{NS}:hub", worker}
    # break: whoever held the grading token could create Jobs (mounting Secrets) in the release namespace
    assert {a["namespace"] for a in rehearsal["facts"]["audit"] if a["user"] == worker} == {f"{NS}-autograde"}


def test_grading_jobs_run_in_their_own_namespace_as_the_tokenless_account(rehearsal):
    jobs = created(rehearsal, "jobs")
    assert jobs, failed_steps(rehearsal)
    ag = f"{NS}{names.AUTOGRADE_NAMESPACE_SUFFIX}"
    policy = next(o for o in rehearsal["objects"] if o["kind"] == "NetworkPolicy"
                  and o["metadata"]["name"] == "coursehub-autograde-deny-all")
    for job in jobs:
        assert job["metadata"]["namespace"] == ag  # break: executor ignored namespace
        assert "stud" not in job["metadata"]["name"]  # opaque names
        pod = job["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == names.AUTOGRADE_SERVICE_ACCOUNT  # break: SA ignored
        assert pod["automountServiceAccountToken"] is False
        labels = job["spec"]["template"]["metadata"]["labels"]
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        assert policy["metadata"]["namespace"] == ag and set(selector.items()) <= set(labels.items())  # break: label
        # the course's own environment grades it (break: one global grader image): the image built from
        # demo-101's locked environment folder, the same one its students' servers run
        assert pod["containers"][0]["image"] == DEMO_ENV_IMAGE


def test_inputs_and_results_never_travel_through_configmaps_or_logs(rehearsal):
    assert created(rehearsal, "jobs")
    assert created(rehearsal, "configmaps") == []  # break: inputs in one ConfigMap
    for pod in job_pods(rehearsal):
        volumes = pod["spec"]["volumes"]
        assert not any("configMap" in v or "secret" in v for v in volumes)
    assert not any(a["resource"] == "pods/log" for a in rehearsal["facts"]["audit"])  # break: results via the log


def test_infrastructure_failures_are_retried_not_graded(rehearsal):
    pods = job_pods(rehearsal)
    # the preempted pod was replaced by Kubernetes (podFailurePolicy), the empty one retried by the queue
    assert len(pods) >= 3, [p["metadata"]["name"] for p in pods]
    assert len(created(rehearsal, "jobs")) >= 2
    first = [p for p in pods if p["metadata"]["labels"]["job-name"] == pods[0]["metadata"]["labels"]["job-name"]]
    assert len(first) == 2  # preempted, replaced by the Job controller (podFailurePolicy: Ignore)
    assert "InfraError" in rehearsal["facts"]["logs"]["coursehub_coursehub-grading-worker-rehearsal.log"]
    # every Job pod "waited" 7 minutes for a node: no Job may fail for time spent Pending (break:
    # activeDeadlineSeconds counted Pending time and turned a deadline backlog into zeros)
    assert not any(c.get("reason") == "DeadlineExceeded" for c in rehearsal["facts"]["job_conditions"])
    assert rehearsal["facts"]["gradebook"]["score"] == 7.0


def test_the_grading_service_cannot_touch_the_kubernetes_api(rehearsal):
    grading = next(o for o in rehearsal["objects"] if o["kind"] == "Deployment"
                   and o["metadata"]["name"] == names.GRADING_NAME)
    assert grading["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    # whoever holds the worker's token cannot create Jobs where the Secrets are
    roles = [o for o in rehearsal["objects"] if o["kind"] in ("Role", "RoleBinding")
             and o["metadata"]["name"] == "coursehub-autograde-jobs"]
    assert roles and all(o["metadata"]["namespace"] == f"{NS}-autograde" for o in roles)
    assert not any(o["kind"] == "Secret" and o["metadata"].get("namespace") == f"{NS}-autograde"
                   for o in rehearsal["objects"])


# ---- production defaults (what the operator's monitoring and LMS rely on) -----------------------


def test_prometheus_scrapes_the_grading_service_as_the_service_monitor_says(rehearsal):
    step(rehearsal, "metrics scrape")
    metrics = rehearsal["facts"]["metrics"]
    assert metrics["url"] == f"http://{names.GRADING_NAME}:8090{names.METRICS_PATH}"
    # the rendered token (a hub service whose role has read:metrics) is accepted; no token is not
    assert metrics["status"] == 200 and metrics["series"], metrics
    assert metrics["without_token"] == 401


def test_the_hub_signs_with_the_tool_key_from_its_secret(rehearsal):
    step(rehearsal, "lti tool key")
    facts = rehearsal["facts"]["tool_key"]
    assert facts["served"] == [facts["secret"]]  # not a key the hub generated on its volume
