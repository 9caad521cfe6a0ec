"""The umbrella chart helm/coursehub: Chart.yaml and values parse, templates are well-formed, and
every object they render (with the chart defaults and with `coursehub helm-values` output)
validates against the Kubernetes 1.32 schema and keeps its security promises.

Rendering uses the real Helm 3 (scripts/install-helm) with the z2jh 4.4.0 dependency built offline
from the packaged chart (tests/kube/helm.py); nothing here is skipped.
"""

from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml

from coursehub.platform.kube import names
from coursehub.platform.kube.helm_values import render
from coursehub.platform.settings import load_settings

from . import helm
from .conftest import REPO, k8s_validate, validate_z2jh

CHART = REPO / "helm" / "coursehub"
WEEK = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def chart_values() -> dict:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def objects(rendered: dict[str, str]) -> list[dict]:
    docs = []
    for path, text in rendered.items():
        if path.endswith(".txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc.setdefault("metadata", {}).setdefault("annotations", {})
                doc["metadata"]["annotations"].setdefault("test/source", path)
                docs.append(doc)
    return docs


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.fixture(scope="module")
def generated_values(tmp_path_factory) -> dict:
    """Chart defaults + helm-values output for a PostgreSQL deployment of the demo course."""
    from coursehub.platform.courses import load_catalog

    f = tmp_path_factory.mktemp("settings") / "settings.yaml"
    f.write_text(yaml.safe_dump({
        "mode": "kubernetes", "hub": {"ip": "0.0.0.0", "db_url": "postgresql+psycopg2://hub@db.example.edu/hub"},
        "auth": {"dev_login": False}, "grading": {"db_url": "postgresql+psycopg://grading@db.example.edu/grading"},
        "kubernetes": {"storage_class": "fast-ssd"},
    }))
    return render(load_settings(f), load_catalog(REPO / "courses"), week_of=WEEK)


# ---- static checks ---------------------------------------------------------------------------


def test_chart_yaml_depends_on_z2jh_4_4():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "coursehub"
    (dep,) = chart["dependencies"]
    assert dep["name"] == "jupyterhub" and dep["version"].startswith("4.4")
    assert dep["repository"] == "https://hub.jupyter.org/helm-chart/"
    assert dep["condition"] == "jupyterhub.enabled"
    # the same minimum as the packaged z2jh chart (its Chart.yaml), not a stricter or looser guess
    import tarfile

    with tarfile.open(helm.Z2JH_TGZ) as tgz:
        z2jh_chart = yaml.safe_load(tgz.extractfile("jupyterhub/Chart.yaml").read())
    assert chart["kubeVersion"] == z2jh_chart["kubeVersion"].replace("'", "") == ">=1.28.0-0"


def test_chart_values_for_z2jh_validate(z2jh):
    validate_z2jh(z2jh, chart_values()["jupyterhub"])


def test_names_shared_with_the_code_match_values(helm_render):
    v = chart_values()
    assert v["grading"]["name"] == names.GRADING_NAME
    assert v["grading"]["serviceAccount"]["name"] == names.GRADING_SERVICE_ACCOUNT
    assert v["autograde"]["serviceAccountName"] == names.AUTOGRADE_SERVICE_ACCOUNT
    assert v["autograde"]["podLabels"] == names.AUTOGRADE_POD_LABELS
    assert v["scaler"]["statefulSet"] == names.PLACEHOLDER_STATEFULSET
    hub_claims = [x["persistentVolumeClaim"]["claimName"] for x in v["jupyterhub"]["hub"]["extraVolumes"]
                  if "persistentVolumeClaim" in x]
    assert hub_claims == [names.HUB_STATE_CLAIM]
    assert names.HUB_STATE_CLAIM in by_kind(helm_render(), "PersistentVolumeClaim")
    assert v["jupyterhub"]["custom"]["coursehub"]["settingsFile"] == names.SETTINGS_FILE
    assert v["jupyterhub"]["hub"]["services"][names.GRADING_SERVICE]["url"].startswith(f"http://{names.GRADING_NAME}:")
    egress = v["jupyterhub"]["singleuser"]["networkPolicy"]["egress"][0]
    assert egress["to"][0]["podSelector"]["matchLabels"] == names.GRADING_POD_LABELS


# ---- rendered objects ------------------------------------------------------------------------


def test_default_render_validates_against_kubernetes_1_32(helm_render):
    docs = helm_render()
    kinds = sorted(f"{d['kind']}/{d['metadata'].get('namespace', '')}/{d['metadata']['name']}" for d in docs)
    ag = "coursehub-autograde"
    assert kinds == sorted([
        "ConfigMap//coursehub-settings", "CronJob//coursehub-scale-placeholders",
        "PersistentVolumeClaim//coursehub-hub-state", "Secret//coursehub-lti-tool-key",
        "Deployment//coursehub-grading", "Deployment//coursehub-grading-worker",
        "NetworkPolicy//coursehub-grading", "NetworkPolicy//coursehub-grading-worker",
        "PersistentVolumeClaim//coursehub-grading-storage",
        "Role//coursehub-scaler", "RoleBinding//coursehub-scaler", "Service//coursehub-grading",
        "ServiceAccount//coursehub-grading", "ServiceAccount//coursehub-grading-worker",
        "ServiceAccount//coursehub-scaler",
        # the autograde namespace and what lives in it
        f"Namespace//{ag}", f"NetworkPolicy/{ag}/coursehub-autograde-deny-all", f"Role/{ag}/coursehub-autograde-jobs",
        f"RoleBinding/{ag}/coursehub-autograde-jobs", f"ServiceAccount/{ag}/coursehub-autograde",
        f"ResourceQuota/{ag}/coursehub-autograde", f"LimitRange/{ag}/coursehub-autograde",
    ])  # one grading replica: no PodDisruptionBudget; no courses: no course claims
    for doc in docs:
        k8s_validate(doc)


def test_generated_render_validates(generated_values, helm_render):
    overrides = {"grading": {"replicas": 2, "metricsNamespaceSelector": {"matchLabels": {"team": "monitoring"}},
                             "storage": {"accessModes": ["ReadWriteMany"]}, "dbUpgrade": {"enabled": True}}}
    docs = helm_render(generated_values, overrides)
    for doc in docs:
        k8s_validate(doc)
    job = by_kind(docs, "Job")["coursehub-grading-db-upgrade"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    upgrade = job["spec"]["template"]["spec"]["containers"][0]
    assert upgrade["command"] == ["coursehub", "grading-db", "upgrade"]
    assert {e["name"] for e in upgrade["env"]} == {"COURSEHUB_SETTINGS", "PGPASSWORD", "PGSSLMODE"}
    # a pre-upgrade hook runs before the release's ConfigMap changes: it reads its own, new copy
    volumes = {v["name"]: v for v in job["spec"]["template"]["spec"]["volumes"]}
    hook_cm = by_kind(docs, "ConfigMap")[volumes["settings"]["configMap"]["name"]]
    assert hook_cm["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert int(hook_cm["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0
    assert hook_cm["data"] == by_kind(docs, "ConfigMap")["coursehub-settings"]["data"]
    (pdb,) = by_kind(docs, "PodDisruptionBudget").values()
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == names.GRADING_POD_LABELS
    pvc = by_kind(docs, "PersistentVolumeClaim")["coursehub-grading-storage"]
    assert pvc["spec"]["storageClassName"] == "fast-ssd" and pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_settings_configmap_is_a_valid_settings_file(generated_values, tmp_path, helm_render):
    docs = helm_render(generated_values)
    text = by_kind(docs, "ConfigMap")["coursehub-settings"]["data"]["settings.yaml"]
    (tmp_path / "settings.yaml").write_text(text)
    settings = load_settings(tmp_path / "settings.yaml")
    assert settings.mode == "kubernetes" and settings.grading.executor == "kubernetes"
    assert settings.grading.db_url == "postgresql+psycopg://grading@db.example.edu/grading"


def test_sqlite_and_submissions_live_on_the_volume(helm_render):
    docs = helm_render()
    pod = by_kind(docs, "Deployment")["coursehub-grading"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/srv/coursehub/state", "/srv/coursehub/exchange"):  # state_dir holds grading.sqlite
        assert "persistentVolumeClaim" in volumes[mounts[path]["name"]], path
    assert not any("emptyDir" in volumes[m["name"]] for p, m in mounts.items() if p.startswith("/srv/coursehub"))


def test_database_password_comes_from_the_secret(generated_values, helm_render):
    docs = helm_render(generated_values)
    container = by_kind(docs, "Deployment")["coursehub-grading"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "coursehub-db", "key": "grading-password"}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hub", "key": "hub.services.grading.apiToken"}
    assert not any("value" in e and "password" in e["name"].lower() for e in container["env"])


def test_autograde_pods_get_no_network_and_no_token(helm_render):
    docs = helm_render()
    (pol,) = [d for d in docs if d["metadata"]["name"] == "coursehub-autograde-deny-all"]
    assert pol["metadata"]["namespace"] == "coursehub-autograde"
    spec = pol["spec"]
    assert spec["podSelector"] == {} and sorted(spec["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in spec  # nothing may reach a grader pod
    (rule,) = spec["egress"]  # out: only the worker's job port, by IP (no DNS)
    assert rule["ports"] == [{"port": names.WORKER_JOB_PORT, "protocol": "TCP"}]
    assert rule["to"][0]["podSelector"]["matchLabels"] == names.WORKER_POD_LABELS
    assert rule["to"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "coursehub"}
    sa = by_kind(docs, "ServiceAccount")[names.AUTOGRADE_SERVICE_ACCOUNT]
    assert sa["automountServiceAccountToken"] is False
    bound = {s["name"] for b in by_kind(docs, "RoleBinding").values() for s in b["subjects"]}
    assert names.AUTOGRADE_SERVICE_ACCOUNT not in bound


def test_autograde_namespace_is_restricted_and_bounded(helm_render):
    docs = helm_render()
    ns = by_kind(docs, "Namespace")["coursehub-autograde"]
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    quota = by_kind(docs, "ResourceQuota")["coursehub-autograde"]["spec"]["hard"]
    assert quota["pods"] == "20" and quota["secrets"] == "0"
    assert "default" in by_kind(docs, "LimitRange")["coursehub-autograde"]["spec"]["limits"][0]


def test_worker_manages_jobs_only_in_the_autograde_namespace(helm_render):
    docs = helm_render()
    role = by_kind(docs, "Role")["coursehub-autograde-jobs"]
    assert role["metadata"]["namespace"] == "coursehub-autograde"
    granted = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"]
               for r in rule["resources"]}
    assert granted == {("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
                       ("", "pods"): {"get", "list", "watch"}}
    binding = by_kind(docs, "RoleBinding")["coursehub-autograde-jobs"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": names.WORKER_SERVICE_ACCOUNT,
                                    "namespace": "coursehub"}]
    # the grading service itself has no Kubernetes rights and no token
    grading = by_kind(docs, "Deployment")["coursehub-grading"]["spec"]["template"]["spec"]
    assert grading["automountServiceAccountToken"] is False
    assert all(s["name"] != names.GRADING_SERVICE_ACCOUNT for b in by_kind(docs, "RoleBinding").values()
               for s in b["subjects"])


def test_worker_deployment_runs_the_queue_worker(helm_render, generated_values):
    docs = helm_render(generated_values)
    dep = by_kind(docs, "Deployment")[names.WORKER_NAME]
    pod = dep["spec"]["template"]["spec"]
    assert dep["spec"]["replicas"] == 2 and pod["serviceAccountName"] == names.WORKER_SERVICE_ACCOUNT
    (c,) = pod["containers"]
    assert c["command"] == ["python", "-m", "coursehub.grading.queue.worker"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env[names.ENV_NAMESPACE] == "coursehub-autograde"
    assert env[names.ENV_SERVICE_ACCOUNT] == names.AUTOGRADE_SERVICE_ACCOUNT
    assert env[names.ENV_CALLBACK_URL] == f"http://$(POD_IP):{names.WORKER_JOB_PORT}"
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts[f"{names.POD_COURSE_DIRS}/demo-101"] == "course-demo-101"
    claim = {v["name"]: v for v in pod["volumes"]}["course-demo-101"]["persistentVolumeClaim"]["claimName"]
    assert claim == names.course_claim("demo-101")
    pvc = by_kind(docs, "PersistentVolumeClaim")[claim]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]


def test_grading_accepts_only_its_api_port(helm_render):
    docs = helm_render()
    pol = by_kind(docs, "NetworkPolicy")[names.GRADING_NAME]["spec"]
    assert pol["policyTypes"] == ["Ingress"]
    ports = {p["port"] for rule in pol["ingress"] for p in rule["ports"]}
    assert ports == {chart_values()["grading"]["port"]}
    sources = [peer["podSelector"]["matchLabels"] for peer in pol["ingress"][0]["from"]]
    assert {"component": "singleuser-server"} in sources


def test_scaler_may_only_scale_the_placeholders(helm_render):
    docs = helm_render()
    (rule,) = by_kind(docs, "Role")["coursehub-scaler"]["rules"]
    assert rule == {"apiGroups": ["apps"], "resources": ["statefulsets/scale"],
                    "resourceNames": ["user-placeholder"], "verbs": ["get", "patch", "update"]}
    job = by_kind(docs, "CronJob")["coursehub-scale-placeholders"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    command = job["containers"][0]["command"]
    assert command[:2] == ["coursehub", "scale-placeholders"]
    # the arguments are ones the command accepts
    import argparse

    from coursehub.platform.kube import scaler

    p = argparse.ArgumentParser()
    scaler.add_arguments(p)
    args = p.parse_args(command[2:])
    assert args.statefulset == "user-placeholder" and args.maximum == 500


def test_scaler_extra_args_reach_the_command(helm_render):
    values = chart_values()
    values["scaler"]["extraArgs"] = ["--base=20"]
    docs = helm_render(values)
    job = by_kind(docs, "CronJob")["coursehub-scale-placeholders"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"][-1] == "--base=20"
    for doc in docs:
        k8s_validate(doc)


def test_scaler_and_grading_can_be_switched_off(helm_render):
    values = chart_values()
    values["scaler"]["enabled"] = False
    values["grading"]["enabled"] = False
    docs = helm_render(values)
    # settings, hub state, LTI tool key
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "PersistentVolumeClaim", "Secret"]


# ---- helm lint, and the z2jh subchart with our values ----------------------------------------


def test_helm_lint_strict_with_generated_values(helm_chart, generated_values, tmp_path):
    chart, home = helm_chart
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(generated_values))
    helm.lint(chart, [f], home)
    helm.lint(chart, [], home)


def test_chart_lock_matches_the_packaged_z2jh():
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    assert [(d["name"], d["version"], d["repository"]) for d in lock["dependencies"]] == [
        ("jupyterhub", "4.4.0", "https://hub.jupyter.org/helm-chart/")]


def test_z2jh_objects_render_with_generated_values(helm_render, generated_values):
    everything = helm_render(generated_values, everything=True)
    hub = by_kind(everything, "Deployment")["hub"]
    assert hub["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ghcr.io/coursehub/hub:")


def test_umbrella_values_schema_accepts_ours_and_rejects_typos(generated_values):
    import json

    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.validate(chart_values(), schema)
    jsonschema.validate(generated_values, schema)
    for path, bad in ((("grading", "replica"), 2), (("scaler", "maxReplicas"), "many"),
                      (("grading", "database", "sslmode"), "sometimes"), (("grafana",), {})):
        values = copy.deepcopy(generated_values)
        node = values
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bad
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(values, schema)
