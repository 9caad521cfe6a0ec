"""`coursehub helm-values`: the rendered values validate against the z2jh 4.4.0 schema (merged
with the chart's defaults, as helm does) and say what the course data says."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re

import jsonschema
import pytest
import yaml
from traitlets.config import Config

from coursehub.platform.courses import load_catalog
from coursehub.platform.kube import helm_values
from coursehub.platform.kube.helm_values import RenderError, render, split_image
from coursehub.platform.settings import load_settings

from .conftest import REPO, validate_z2jh, write_course

WEEK = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def k8s_settings(tmp_path, courses_dir, **extra):
    data = {"mode": "kubernetes", "hub": {"ip": "0.0.0.0"}, "auth": {"dev_login": False}, "courses_dir": str(courses_dir),
            **extra}
    f = tmp_path / "settings.yaml"
    f.write_text(yaml.safe_dump(data))
    return load_settings(f)


def test_demo_values_validate(z2jh, demo_catalog):
    values = render(load_settings(), demo_catalog, week_of=WEEK)
    validate_z2jh(z2jh, values["jupyterhub"])


def test_two_course_values_validate_and_match_the_plan(z2jh, tmp_path, two_courses):
    root = next(iter(two_courses)).folder.parent
    settings = k8s_settings(tmp_path, root, hub={"ip": "0.0.0.0", "db_url": "postgresql+psycopg2://hub@db.example.edu/hub"},
                            spawner={"idle_timeout": 1800})
    values = render(settings, load_catalog(root), week_of=WEEK)
    jh = values["jupyterhub"]
    validate_z2jh(z2jh, jh)
    profiles = {p["slug"]: p for p in jh["singleuser"]["profileList"]}
    assert set(profiles) == {"stats-200", "ml-300"}
    assert profiles["ml-300"]["kubespawner_override"]["image"] == "registry.example.edu/ml:2026.1"
    assert profiles["ml-300"]["allowed_groups"] == ["course:ml-300:instructor", "course:ml-300:ta", "course:ml-300:student"]
    assert jh["hub"]["concurrentSpawnLimit"] == 165  # the hand-worked plan in test_capacity
    assert jh["scheduling"]["userPlaceholder"]["resources"]["requests"] == {"cpu": 1, "memory": "4096Mi"}
    assert jh["scheduling"]["podPriority"]["enabled"] is True
    assert jh["cull"] == {"enabled": True, "timeout": 1800, "every": 300, "concurrency": 5, "users": False}
    assert jh["hub"]["db"] == {"type": "postgres", "url": "postgresql+psycopg2://hub@db.example.edu/hub"}
    assert jh["hub"]["extraEnv"]["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "coursehub-db", "key": "hub-password"}
    assert jh["hub"]["config"]["JupyterHub"]["authenticator_class"] == "coursehub.platform.auth.CoursehubAuthenticator"
    assert jh["custom"]["coursehub"]["settings"]["spawner"]["backend"] == "kubernetes"


def test_user_pods_reach_only_the_grading_api_and_never_metadata(z2jh, demo_catalog):
    jh = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    netpol = jh["singleuser"]["networkPolicy"]
    assert netpol["enabled"] and netpol["egressAllowRules"]["cloudMetadataServer"] is False
    assert netpol["egressAllowRules"]["privateIPs"] is False  # no cluster-internal address but:
    (rule,) = netpol["egress"]
    assert rule["ports"] == [{"port": 8090, "protocol": "TCP"}]
    assert rule["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "grading"
    # The NetworkPolicy blocks the metadata server: no privileged iptables init container.
    assert jh["singleuser"]["cloudMetadata"] == {"blockWithIptables": False, "ip": "169.254.169.254"}


def test_unknown_key_fails_the_schema(z2jh, demo_catalog):
    jh = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    jh["hub"]["notAKey"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_z2jh(z2jh, jh)
    jh = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    jh["coursehub"] = {"settings": {}}  # our data belongs under custom:
    with pytest.raises(jsonschema.ValidationError):
        validate_z2jh(z2jh, jh)


def test_password_in_a_database_url_is_refused(tmp_path, demo_catalog):
    settings = k8s_settings(tmp_path, "/nonexistent", grading={"db_url": "postgresql+psycopg://g:hunter2@db/grading"})
    with pytest.raises(RenderError, match="grading-password") as err:
        render(settings, demo_catalog, week_of=WEEK)
    assert "hunter2" not in str(err.value)


def test_no_idle_culling_when_disabled(tmp_path, demo_catalog):
    settings = k8s_settings(tmp_path, "/x", spawner={"idle_timeout": 0}, kubernetes={"scale_placeholders": False})
    values = render(settings, demo_catalog, week_of=WEEK)
    assert values["jupyterhub"]["cull"] == {"enabled": False}
    # without the scaler, the placeholders stay at the planned seats all the time
    assert values["jupyterhub"]["scheduling"]["userPlaceholder"]["replicas"] == 120
    assert values["scaler"]["enabled"] is False


@pytest.mark.parametrize(("ref", "name", "tag"), [
    ("quay.io/jupyter/scipy-notebook:2025-11-24", "quay.io/jupyter/scipy-notebook", "2025-11-24"),
    ("registry:5000/img", "registry:5000/img", "latest"),
    ("img", "img", "latest"),
])
def test_split_image(ref, name, tag):
    assert split_image(ref) == {"name": name, "tag": tag}


def test_command_writes_parseable_yaml(tmp_path, z2jh, capsys):
    out = tmp_path / "values.yaml"
    assert helm_values.run(argparse.Namespace(settings=None, courses_dir=None, out=out, layout="umbrella")) == 0
    values = yaml.safe_load(out.read_text())
    assert set(values) == {"jupyterhub", "coursehub", "grading", "autograde", "hubState", "scaler", "worker",
                           "courseStorage", "ltiToolKey"}
    validate_z2jh(z2jh, values["jupyterhub"])
    assert "50-coursehub: |" in out.read_text()
    bare = tmp_path / "z2jh.yaml"
    assert helm_values.run(argparse.Namespace(settings=None, courses_dir=None, out=bare, layout="z2jh")) == 0
    validate_z2jh(z2jh, yaml.safe_load(bare.read_text()))


def test_command_reports_bad_course_files(tmp_path, capsys):
    write_course(tmp_path / "c", "bad-1", environment={"cpu_guarantee": 2, "cpu_limit": 1})
    args = argparse.Namespace(settings=None, courses_dir=tmp_path / "c", out=tmp_path / "v.yaml", layout="umbrella")
    assert helm_values.run(args) == 1
    assert "cpu_limit" in capsys.readouterr().err and not (tmp_path / "v.yaml").exists()


@pytest.mark.hubcompat
def test_hub_setup_applies_the_course_spawner(tmp_path, monkeypatch, demo_catalog, caplog):
    from coursehub.platform.kube import hub_setup

    settings_file = tmp_path / "settings.yaml"
    values = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]["custom"]["coursehub"]
    data = dict(values["settings"], courses_dir=str(next(iter(demo_catalog)).folder.parent),
                state_dir=str(tmp_path / "state"))
    settings_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COURSEHUB_SETTINGS", str(settings_file))
    c = Config()
    with caplog.at_level(logging.WARNING, logger="coursehub.kube"):
        hub_setup.configure(c, values)
    assert c.JupyterHub.spawner_class == "coursehub.platform.kube.spawner.CourseKubeSpawner"
    assert [p["slug"] for p in c.KubeSpawner.profile_list] == ["demo-101"]
    assert "not the ones" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="coursehub.kube"):
        hub_setup.configure(Config(), dict(values, catalogDigest="sha256:other"))
    assert "not the ones the Helm values were rendered from" in caplog.text


@pytest.mark.hubcompat
def test_hub_extra_config_snippet_runs_in_a_z2jh_like_namespace(tmp_path, monkeypatch, demo_catalog):
    """Run the extraConfig Python the way z2jh does (exec with `c` and a `z2jh` module)."""
    import sys
    import types


    values = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    settings_file = tmp_path / "settings.yaml"
    data = dict(values["custom"]["coursehub"]["settings"], courses_dir=str(REPO / "courses"), state_dir=str(tmp_path))
    settings_file.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("COURSEHUB_SETTINGS", str(settings_file))
    z2jh_module = types.ModuleType("z2jh")
    z2jh_module.get_config = lambda key, default=None: values["custom"]["coursehub"] if key == "custom.coursehub" else default
    monkeypatch.setitem(sys.modules, "z2jh", z2jh_module)
    chart_snippet = yaml.safe_load((REPO / "helm/coursehub/values.yaml").read_text())["jupyterhub"]["hub"]["extraConfig"]
    for snippet in (values["hub"]["extraConfig"]["50-coursehub"], chart_snippet["50-coursehub"]):
        c = Config()
        exec(compile(snippet, "50-coursehub", "exec"), {"c": c})
        assert c.JupyterHub.spawner_class == values["hub"]["config"]["JupyterHub"]["spawner_class"]
    from traitlets.utils.importstring import import_item

    assert import_item(values["hub"]["config"]["JupyterHub"]["spawner_class"]).__name__ == "CourseKubeSpawner"


def test_role_configs_are_mounted_for_the_spawner(z2jh, demo_catalog):
    jh = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    files = jh["singleuser"]["extraFiles"]
    mounts = {f["mountPath"]: f["stringData"] for f in files.values()}
    root = jh["hub"]["config"]["CourseKubeSpawner"]["role_config_root"]
    student = json.loads(mounts[f"{root}/student/labconfig/page_config.json"])
    staff = json.loads(mounts[f"{root}/staff/labconfig/page_config.json"])
    assert student["disabledExtensions"].get("@jupyter/nbgrader:formgrader") is True
    assert staff["disabledExtensions"] == {"@jupyterlab/apputils-extension:announcements": True}  # only the news
    assert student["disabledExtensions"].get("@jupyterlab/apputils-extension:announcements") is True
    assert student["buildCheck"] is staff["buildCheck"] is False  # no rebuild check on each page load
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", key) for key in files)  # valid Secret keys
    validate_z2jh(z2jh, jh)


def test_memory_guarantee_is_a_jupyterhub_byte_specification(demo_catalog):
    """z2jh hands singleuser.memory.guarantee to KubeSpawner.mem_guarantee (K/M/G/T only)."""
    from jupyterhub.traitlets import ByteSpecification
    from traitlets import HasTraits

    class T(HasTraits):
        mem = ByteSpecification()

    jh = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    assert T(mem=jh["singleuser"]["memory"]["guarantee"]).mem == 512 * 2**20


def test_user_pods_get_the_grading_url_with_its_service_prefix(demo_catalog):
    jh = render(load_settings(), demo_catalog, week_of=WEEK)["jupyterhub"]
    assert jh["singleuser"]["extraEnv"]["COURSEHUB_GRADING_URL"] == "http://coursehub-grading:8090/services/grading/"


def test_a_locked_course_environment_is_the_image_of_its_servers_and_its_grading_jobs(z2jh, tmp_path, two_courses):
    """`coursehub env lock` in one course: its profile and its grading Jobs get the image built from the
    lock (tagged by the lock's hash); the other course keeps its hand-written image."""
    import shutil

    from coursehub.platform.environments_image import course_image

    root = next(iter(two_courses)).folder.parent
    demo_env = REPO / "courses" / "demo-101" / "environment"
    shutil.copytree(demo_env, root / "stats-200" / "environment")
    settings = k8s_settings(tmp_path, root, kubernetes={"hub_image": "registry.example.edu/coursehub/hub:1.0"})
    values = render(settings, load_catalog(root), week_of=WEEK)
    built = course_image(settings, "stats-200")
    assert built and built.startswith("registry.example.edu/coursehub/") and "stats-200" in built
    profiles = {p["slug"]: p["kubespawner_override"]["image"] for p in values["jupyterhub"]["singleuser"]["profileList"]}
    assert profiles == {"stats-200": built, "ml-300": "registry.example.edu/ml:2026.1"}
    assert values["autograde"]["courseImages"]["stats-200"] == built
    assert values["jupyterhub"]["prePuller"]["pullProfileListImages"] is True
    validate_z2jh(z2jh, values["jupyterhub"])


def test_volume_datasets_are_mounted_read_only_in_the_course_profile(z2jh, tmp_path, capsys):
    root = tmp_path / "courses"
    folder = write_course(root, "geo-1", data=[
        {"name": "era_5", "volume": {"claim": "era5-readonly"}, "mount": "/srv/data/climate"},
        {"name": "census", "path": "data/census"}])
    (folder / "data" / "census").mkdir(parents=True)
    write_course(root, "plain-1")
    settings = k8s_settings(tmp_path, root)
    values = render(settings, load_catalog(root), week_of=WEEK)
    validate_z2jh(z2jh, values["jupyterhub"])
    profiles = {p["slug"]: p["kubespawner_override"] for p in values["jupyterhub"]["singleuser"]["profileList"]}
    # dicts, as z2jh sets singleuser.storage: KubeSpawner merges them, so the home volume stays
    assert profiles["geo-1"]["volumes"] == {"coursehub-data-0-era-5": {
        "name": "data-0-era-5", "persistentVolumeClaim": {"claimName": "era5-readonly", "readOnly": True}}}
    assert profiles["geo-1"]["volume_mounts"] == {"coursehub-data-0-era-5": {
        "name": "data-0-era-5", "mountPath": "/srv/data/climate", "readOnly": True}}
    assert "volumes" not in profiles["plain-1"]
    notes = helm_values.data_notes(list(load_catalog(root)))
    assert any("data census is a folder of the course, mounted on the local platform only" in n for n in notes)
    assert any("era5-readonly must exist in the hub's namespace and in the autograde namespace" in n for n in notes)
