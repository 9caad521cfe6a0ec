"""The umbrella chart helm/coursehub: Chart.yaml and values parse, templates are well-formed, and
every object they render (with the chart defaults and with `coursehub helm-values` output)
validates against the Kubernetes 1.32 schema and keeps its security promises.

Rendering uses tests/kube/helmlite.py (the template subset the chart uses). With a `helm` binary
on PATH, `helm lint --strict` and `helm template` run as well and must agree with it.
"""

from __future__ import annotations

import copy
import datetime as dt
import shutil
import subprocess

import pytest
import yaml

from coursehub.platform.kube import names
from coursehub.platform.kube.helm_values import render
from coursehub.platform.settings import load_settings

from . import helmlite
from .conftest import REPO, helm_merge, k8s_validate, validate_z2jh

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
    return helm_merge(chart_values(), render(load_settings(f), load_catalog(REPO / "courses"), week_of=WEEK))


# ---- static checks ---------------------------------------------------------------------------


def test_chart_yaml_depends_on_z2jh_4_4():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "coursehub"
    (dep,) = chart["dependencies"]
    assert dep["name"] == "jupyterhub" and dep["version"].startswith("4.4")
    assert dep["repository"] == "https://hub.jupyter.org/helm-chart/"
    assert dep["condition"] == "jupyterhub.enabled"
    assert chart["kubeVersion"].startswith(">=1.32")


def test_chart_values_for_z2jh_validate(z2jh):
    validate_z2jh(z2jh, chart_values()["jupyterhub"])


def test_every_template_is_well_formed():
    templates = [p for p in (CHART / "templates").rglob("*") if p.is_file()]
    assert len(templates) >= 12
    for path in templates:
        helmlite.parse(path.read_text(), str(path))  # balanced blocks, closed actions and comments


@pytest.mark.parametrize("broken", [
    "{{- if .Values.x }}\nkind: A\n",  # no end
    "kind: {{ .Values.x }\n",  # unclosed action
    "{{ end }}",  # end without block
    "{{/* open comment }}",
])
def test_malformed_templates_are_caught(broken):
    with pytest.raises(helmlite.TemplateError):
        helmlite.parse(broken, "broken.yaml")


def test_unsupported_template_functions_fail_loudly():
    body, defines = helmlite.parse("{{ lookup \"v1\" \"Secret\" \"ns\" \"x\" }}")
    with pytest.raises(helmlite.TemplateError, match="unsupported function"):
        helmlite.Renderer(defines).render_nodes(body, {}, {}, {})


def test_names_shared_with_the_code_match_values():
    v = chart_values()
    assert v["grading"]["name"] == names.GRADING_NAME
    assert v["grading"]["serviceAccount"]["name"] == names.GRADING_SERVICE_ACCOUNT
    assert v["autograde"]["serviceAccountName"] == names.AUTOGRADE_SERVICE_ACCOUNT
    assert v["autograde"]["podLabels"] == names.AUTOGRADE_POD_LABELS
    assert v["scaler"]["statefulSet"] == names.PLACEHOLDER_STATEFULSET
    hub_claims = [x["persistentVolumeClaim"]["claimName"] for x in v["jupyterhub"]["hub"]["extraVolumes"]
                  if "persistentVolumeClaim" in x]
    assert hub_claims == [names.HUB_STATE_CLAIM]
    pvc = helmlite.render_chart(CHART, v)["templates/hub-state-pvc.yaml"]
    assert f"name: {names.HUB_STATE_CLAIM}" in pvc
    assert v["jupyterhub"]["custom"]["coursehub"]["settingsFile"] == names.SETTINGS_FILE
    assert v["jupyterhub"]["hub"]["services"][names.GRADING_SERVICE]["url"].startswith(f"http://{names.GRADING_NAME}:")
    egress = v["jupyterhub"]["singleuser"]["networkPolicy"]["egress"][0]
    assert egress["to"][0]["podSelector"]["matchLabels"] == names.GRADING_POD_LABELS


# ---- rendered objects ------------------------------------------------------------------------


def test_default_render_validates_against_kubernetes_1_32():
    docs = objects(helmlite.render_chart(CHART, chart_values()))
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == sorted([
        "ConfigMap/coursehub-settings", "CronJob/coursehub-scale-placeholders",
        "PersistentVolumeClaim/coursehub-hub-state",
        "Deployment/coursehub-grading", "NetworkPolicy/coursehub-autograde-deny-all",
        "NetworkPolicy/coursehub-grading", "PersistentVolumeClaim/coursehub-grading-storage",
        "Role/coursehub-autograde-jobs", "Role/coursehub-scaler", "RoleBinding/coursehub-autograde-jobs",
        "RoleBinding/coursehub-scaler", "Service/coursehub-grading", "ServiceAccount/coursehub-autograde",
        "ServiceAccount/coursehub-grading", "ServiceAccount/coursehub-scaler",
    ])  # one grading replica: no PodDisruptionBudget
    for doc in docs:
        k8s_validate(doc)


def test_generated_render_validates(generated_values):
    values = copy.deepcopy(generated_values)
    values["grading"].update(replicas=2, metricsNamespaceSelector={"matchLabels": {"team": "monitoring"}})
    values["grading"]["storage"]["accessModes"] = ["ReadWriteMany"]
    values["grading"]["dbUpgrade"]["enabled"] = True
    docs = objects(helmlite.render_chart(CHART, values))
    for doc in docs:
        k8s_validate(doc)
    job = by_kind(docs, "Job")["coursehub-grading-db-upgrade"]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    upgrade = job["spec"]["template"]["spec"]["containers"][0]
    assert upgrade["command"] == ["coursehub", "grading-db", "upgrade"]
    assert {e["name"] for e in upgrade["env"]} == {"COURSEHUB_SETTINGS", "PGPASSWORD", "PGSSLMODE"}
    (pdb,) = by_kind(docs, "PodDisruptionBudget").values()
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == names.GRADING_POD_LABELS
    pvc = by_kind(docs, "PersistentVolumeClaim")["coursehub-grading-storage"]
    assert pvc["spec"]["storageClassName"] == "fast-ssd" and pvc["spec"]["resources"]["requests"]["storage"] == "50Gi"


def test_settings_configmap_is_a_valid_settings_file(generated_values, tmp_path):
    docs = objects(helmlite.render_chart(CHART, generated_values))
    text = by_kind(docs, "ConfigMap")["coursehub-settings"]["data"]["settings.yaml"]
    (tmp_path / "settings.yaml").write_text(text)
    settings = load_settings(tmp_path / "settings.yaml")
    assert settings.mode == "kubernetes" and settings.grading.executor == "kubernetes"
    assert settings.grading.db_url == "postgresql+psycopg://grading@db.example.edu/grading"


def test_sqlite_and_submissions_live_on_the_volume():
    docs = objects(helmlite.render_chart(CHART, chart_values()))
    pod = by_kind(docs, "Deployment")["coursehub-grading"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for path in ("/srv/coursehub/state", "/srv/coursehub/exchange"):  # state_dir holds grading.sqlite
        assert "persistentVolumeClaim" in volumes[mounts[path]["name"]], path
    assert not any("emptyDir" in volumes[m["name"]] for p, m in mounts.items() if p.startswith("/srv/coursehub"))


def test_database_password_comes_from_the_secret(generated_values):
    docs = objects(helmlite.render_chart(CHART, generated_values))
    container = by_kind(docs, "Deployment")["coursehub-grading"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "coursehub-db", "key": "grading-password"}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hub", "key": "hub.services.grading.apiToken"}
    assert not any("value" in e and "password" in e["name"].lower() for e in container["env"])


def test_autograde_pods_get_no_network_and_no_token():
    docs = objects(helmlite.render_chart(CHART, chart_values()))
    pol = by_kind(docs, "NetworkPolicy")["coursehub-autograde-deny-all"]["spec"]
    assert pol["podSelector"]["matchLabels"] == names.AUTOGRADE_POD_LABELS
    assert sorted(pol["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in pol and "egress" not in pol  # no allow rule at all: deny everything
    sa = by_kind(docs, "ServiceAccount")[names.AUTOGRADE_SERVICE_ACCOUNT]
    assert sa["automountServiceAccountToken"] is False
    bound = {s["name"] for b in by_kind(docs, "RoleBinding").values() for s in b["subjects"]}
    assert names.AUTOGRADE_SERVICE_ACCOUNT not in bound


def test_grading_role_manages_jobs_and_only_reads_pods():
    docs = objects(helmlite.render_chart(CHART, chart_values()))
    rules = by_kind(docs, "Role")["coursehub-autograde-jobs"]["rules"]
    granted = {(g, r): set(rule["verbs"]) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]}
    assert set(granted) == {("batch", "jobs"), ("", "pods"), ("", "pods/log")}
    assert granted[("", "pods")] <= {"get", "list", "watch"} and granted[("", "pods/log")] <= {"get", "list", "watch"}
    assert "create" in granted[("batch", "jobs")] and "*" not in set().union(*granted.values())
    binding = by_kind(docs, "RoleBinding")["coursehub-autograde-jobs"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": names.GRADING_SERVICE_ACCOUNT,
                                    "namespace": "coursehub"}]


def test_grading_accepts_only_its_api_port():
    docs = objects(helmlite.render_chart(CHART, chart_values()))
    pol = by_kind(docs, "NetworkPolicy")[names.GRADING_NAME]["spec"]
    assert pol["policyTypes"] == ["Ingress"]
    ports = {p["port"] for rule in pol["ingress"] for p in rule["ports"]}
    assert ports == {chart_values()["grading"]["port"]}
    sources = [peer["podSelector"]["matchLabels"] for peer in pol["ingress"][0]["from"]]
    assert {"component": "singleuser-server"} in sources


def test_scaler_may_only_scale_the_placeholders():
    docs = objects(helmlite.render_chart(CHART, chart_values()))
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


def test_scaler_extra_args_reach_the_command():
    values = chart_values()
    values["scaler"]["extraArgs"] = ["--base=20"]
    docs = objects(helmlite.render_chart(CHART, values))
    job = by_kind(docs, "CronJob")["coursehub-scale-placeholders"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert job["containers"][0]["command"][-1] == "--base=20"
    for doc in docs:
        k8s_validate(doc)


def test_scaler_and_grading_can_be_switched_off():
    values = chart_values()
    values["scaler"]["enabled"] = False
    values["grading"]["enabled"] = False
    docs = objects(helmlite.render_chart(CHART, values))
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "PersistentVolumeClaim"]  # settings, hub state


# ---- the real helm, when available -----------------------------------------------------------


@pytest.fixture
def helm_chart_copy(tmp_path):
    """helm needs the jupyterhub dependency downloaded (no network here): render our templates
    from a copy of the chart without the dependency."""
    if shutil.which("helm") is None:
        pytest.skip("no helm binary on PATH: helm lint/template not run (helmlite rendering still is)")
    copy_dir = tmp_path / "coursehub"
    shutil.copytree(CHART, copy_dir)
    chart = yaml.safe_load((copy_dir / "Chart.yaml").read_text())
    chart.pop("dependencies")
    (copy_dir / "Chart.yaml").write_text(yaml.safe_dump(chart))
    return copy_dir


def test_helm_lint(helm_chart_copy):
    result = subprocess.run(["helm", "lint", "--strict", str(helm_chart_copy)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_template_matches_helmlite(helm_chart_copy, generated_values, tmp_path):
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(generated_values))
    result = subprocess.run(
        ["helm", "template", "coursehub", str(helm_chart_copy), "-n", "coursehub", "-f", str(values_file),
         "--kube-version", "1.32.0"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    from_helm = sorted((d for d in yaml.safe_load_all(result.stdout) if d), key=lambda d: (d["kind"], d["metadata"]["name"]))
    ours = helmlite.render_chart(CHART, generated_values)
    from_lite = sorted((d for path, t in ours.items() if not path.endswith(".txt")
                        for d in yaml.safe_load_all(t) if d),
                       key=lambda d: (d["kind"], d["metadata"]["name"]))
    assert from_helm == from_lite


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
