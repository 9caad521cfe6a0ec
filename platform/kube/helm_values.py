"""`coursehub helm-values`: the Helm values for the coursehub umbrella chart, rendered from the
platform settings and `courses/`.

The `jupyterhub:` part is Zero to JupyterHub 4.4 values (validated against its schema): the hub
image with coursehub, our settings under `custom.coursehub` (the hub, the grading service and the
scaler all read the same file, mounted from the chart's `coursehub-settings` ConfigMap), the
authenticator, one KubeSpawner profile per course (offered only to that course's groups by
`CourseKubeSpawner`), idle culling, scheduling and pre-pulling sized by the capacity plan, and
spawn limits sized for class starts. The other top-level keys configure our own templates.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from coursehub.platform.courses import Catalog, Course, parse_quantity
from coursehub.platform.environments import catalog_digest
from coursehub.platform.settings import Settings

from .capacity import CapacityPlan, params_from_settings, plan
from .names import (
    GRADING_NAME,
    GRADING_POD_LABELS,
    GRADING_SERVICE,
    HUB_STATE_CLAIM,
    METRICS_SERVICE,
    SETTINGS_CONFIGMAP,
    SETTINGS_FILE,
    SETTINGS_MOUNT,
    TOOL_KEY_FILE,
    TOOL_KEY_SECRET,
    TOOL_KEY_SECRET_KEY,
    course_claim,
)
from .profiles import course_profile_list, local_only_data
from .schedule import week_start
from .scheduler_image import KUBE_SCHEDULER_IMAGE, UnknownKubeVersion, user_scheduler_tag

AUTHENTICATOR_CLASS = "coursehub.platform.auth.CoursehubAuthenticator"
SPAWNER_CLASS = "coursehub.platform.kube.spawner.CourseKubeSpawner"
#: Where things live inside the hub, grading and scaler pods (the images bake courses/ in).
POD_STATE_DIR = "/srv/coursehub/state"
POD_COURSES_DIR = "/srv/coursehub/courses"
POD_STORAGE_DIR = "/srv/coursehub/exchange"
CLOUD_METADATA_IP = "169.254.169.254"
#: Where the staff/student Jupyter config folders are mounted in user pods.
ROLE_CONFIG_ROOT = "/etc/coursehub/jupyter"
#: Scopes of the grading service's token: read who is who, nothing else (never admin).
GRADING_SCOPES = ["list:users", "read:users", "read:users:groups", "list:groups", "read:groups"]

HUB_EXTRA_CONFIG = """\
# coursehub: load the platform settings and course catalog (the same files the grading service
# reads), check them against these values, and apply the identity part of the hub config.
from z2jh import get_config as z2jh_get_config

import coursehub.platform.kube.hub_setup as coursehub_hub_setup

coursehub_hub_setup.configure(c, z2jh_get_config("custom.coursehub"))
"""


class RenderError(ValueError):
    """The settings cannot be turned into safe values (the message says what to change)."""


def split_image(ref: str) -> dict[str, str]:
    """'quay.io/org/img:tag' -> {'name': 'quay.io/org/img', 'tag': 'tag'} (default tag 'latest')."""
    name, _, digest = ref.partition("@")
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag:
        repo, tag = name, "latest"
    if digest:
        tag = f"{tag}@{digest}" if sep and "/" not in tag else f"latest@{digest}"
    return {"name": repo, "tag": tag}


def pinned(settings: Settings, ref: str) -> str:
    """`ref` by digest when `kubernetes.image_digests` gives one for it (platform/environments_image.py)."""
    from coursehub.platform.environments_image import pin_digest

    try:
        return pin_digest(ref, settings.kubernetes.image_digests)
    except ValueError as e:
        raise RenderError(str(e)) from None


def _image_refs(node: Any, found: set[str]) -> set[str]:
    """Every image reference in rendered values: `{name, tag}` maps and plain `name@digest` strings."""
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and isinstance(node.get("tag"), str):
            found.add(f"{node['name']}:{node['tag']}")
        for key, value in node.items():
            if key != "custom":  # the settings file itself lists the digests
                _image_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _image_refs(value, found)
    elif isinstance(node, str) and "@sha256:" in node:
        found.add(node)
    return found


def unpinned_digests(settings: Settings, values: dict[str, Any]) -> list[str]:
    """Entries of `kubernetes.image_digests` no rendered image uses (a course re-locked since, a typo)."""
    used = _image_refs(values, set())
    return [ref for ref in settings.kubernetes.image_digests if pinned(settings, ref) not in used]


def tool_key_secret(settings: Settings) -> str:
    """The Secret with the LTI tool key: the operator's (kubernetes.lti_key_secret) or the chart's."""
    return settings.kubernetes.lti_key_secret or TOOL_KEY_SECRET


def mebibytes(n: int) -> str:
    return f"{-(-n // 2**20)}Mi"


def byte_spec(n: int) -> str:
    """Bytes as a JupyterHub ByteSpecification ('512M' = 512 MiB): KubeSpawner's mem_guarantee and
    mem_limit accept only K/M/G/T, not the Kubernetes 'Mi'/'Gi' suffixes."""
    return f"{-(-n // 2**20)}M"


#: The image the default grader image is built FROM (grading/images/grader/Dockerfile's
#: BASE_IMAGE:BASE_TAG): courses on it are graded with the default grader image.
GRADER_BASE_IMAGE = "quay.io/jupyter/scipy-notebook:2025-11-24"
#: The textbooks service in the hub pod at scale (platform/textbook/service.py SCALE_PORT).
TEXTBOOK_PORT = 8092


def course_grader_images(grader_image: str, courses: list[Course]) -> dict[str, str]:
    """course id -> the grader image built FROM that course's environment image, for courses not
    on the default grader's base: '<grader repo>-<course>:<grader tag>' (docs/operators/deploy.md)."""
    ref = split_image(grader_image)
    return {c.id: f"{ref['name']}-{c.id}:{ref['tag']}" for c in courses
            if c.environment.image != GRADER_BASE_IMAGE}


def environment_images(settings: Settings, courses: list[Course]) -> dict[str, str]:
    """course id -> the image built from the course's locked environment folder (`coursehub env image`):
    its user servers *and* its grading Jobs run it, so a submission is graded with the packages the
    student had. Courses without an environment folder keep `environment.image`."""
    from coursehub.platform.environments_image import course_image

    images = {c.id: course_image(settings, c.id) for c in courses}
    return {cid: image for cid, image in images.items() if image}


def data_notes(courses: list[Course]) -> list[str]:
    """What the values can't carry: folder datasets are mounted on the local platform only, and
    volume datasets need their claim in the autograde namespace too."""
    notes = []
    for c in courses:
        local = local_only_data(c)
        if local:
            notes.append(f"course {c.id}: data {', '.join(local)} is a folder of the course, mounted on the local "
                         "platform only; on Kubernetes give it a `volume:` (docs/instructors/course-yaml.md)")
        claims = sorted({d.volume.claim for d in c.data if d.volume is not None})
        if claims:
            notes.append(f"course {c.id}: the claims {', '.join(claims)} must exist in the hub's namespace and in "
                         "the autograde namespace (docs/operators/sandbox.md)")
    return notes


def _refuse_inline_password(url: str | None, what: str, secret_key: str, settings: Settings) -> None:
    if not url:
        return
    from sqlalchemy.engine import make_url

    if make_url(url).password:
        raise RenderError(
            f"{what} contains a password; values and ConfigMaps are not secret. Remove it from the URL "
            f"and put it in the Secret {settings.kubernetes.db_secret!r} under the key {secret_key!r}."
        )


def in_cluster_settings(settings: Settings) -> dict[str, Any]:
    """The settings file the pods read: the operator's settings with in-cluster paths and backends."""
    data = settings.model_dump(mode="json", exclude={"source"})
    data["mode"] = "kubernetes"
    data["state_dir"] = POD_STATE_DIR
    data["courses_dir"] = POD_COURSES_DIR
    data["spawner"].update(backend="kubernetes", homes_dir=None)
    data["grading"].update(storage_dir=POD_STORAGE_DIR, executor="kubernetes")
    data["auth"]["dev_login"] = False
    data["auth"]["lti"]["local_lms"] = False
    Settings.model_validate(data)  # still valid after the changes
    return data


def role_config_files(settings: Settings) -> dict[str, dict[str, str]]:
    """`singleuser.extraFiles` with the staff and student Jupyter configuration folders, written
    by the same function the local hub uses (platform/userconfig.py `write_role_configs`)."""
    from coursehub.platform.userconfig import write_role_configs

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_role_configs(root, settings)
        files = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            key = "coursehub-" + re.sub(r"[^A-Za-z0-9.-]+", "-", rel)
            files[key] = {"mountPath": f"{ROLE_CONFIG_ROOT}/{rel}", "stringData": path.read_text()}
    return files


def _hub_db(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(hub.db, extra env) — PostgreSQL with the password from the Secret, else the chart's SQLite PVC."""
    url = settings.hub.db_url
    if url and url.startswith("postgresql"):
        env = {"PGPASSWORD": {"valueFrom": {"secretKeyRef": {"name": settings.kubernetes.db_secret,
                                                              "key": "hub-password"}}}}
        return {"type": "postgres", "url": url}, env
    return {"type": "sqlite-pvc"}, {}


def scheduler_tag(settings: Settings) -> str:
    try:
        return user_scheduler_tag(settings.kubernetes.version)
    except UnknownKubeVersion as e:
        raise RenderError(str(e)) from None


def render_z2jh(settings: Settings, courses: list[Course], capacity: CapacityPlan) -> dict[str, Any]:
    """The `jupyterhub:` (z2jh) part of the values."""
    k = settings.kubernetes
    profiles = course_profile_list(courses)
    built = environment_images(settings, courses)
    for profile in profiles:  # the pre-puller pulls these too (pullProfileListImages)
        override = profile["kubespawner_override"]
        if profile["slug"] in built:
            override["image"] = built[profile["slug"]]
        if override.get("image"):
            override["image"] = pinned(settings, override["image"])
    envs = [c.environment for c in courses]
    default_image = pinned(settings, envs[0].image if envs else "quay.io/jupyter/scipy-notebook:2025-11-24")
    db, db_env = _hub_db(settings)
    boot_seconds = int(k.node_boot_minutes * 60)
    idle = settings.spawner.idle_timeout
    grading_port = settings.grading.port
    textbook_port = settings.textbook.port or TEXTBOOK_PORT

    key_secret = tool_key_secret(settings)
    hub: dict[str, Any] = {
        "image": split_image(pinned(settings, k.hub_image)),
        "config": {
            "JupyterHub": {"authenticator_class": AUTHENTICATOR_CLASS, "spawner_class": SPAWNER_CLASS},
            "Authenticator": {"enable_auth_state": True, "admin_users": sorted(settings.hub.admin_users)},
            "KubeSpawner": {"http_timeout": 120},
            "CourseKubeSpawner": {"require_course": True, "admin_sees_all_courses": False,
                                  "role_config_root": ROLE_CONFIG_ROOT,
                                  "course_storage_claims": {c.id: course_claim(c.id) for c in courses}},
        },
        "extraConfig": {"50-coursehub": HUB_EXTRA_CONFIG},
        "extraEnv": {"COURSEHUB_SETTINGS": SETTINGS_FILE, **db_env},
        "extraVolumes": [
            {"name": "coursehub-settings", "configMap": {"name": SETTINGS_CONFIGMAP}},
            {"name": "coursehub-state", "persistentVolumeClaim": {"claimName": HUB_STATE_CLAIM}},
            {"name": TOOL_KEY_SECRET, "secret": {"secretName": key_secret, "defaultMode": 0o440}},
        ],
        "extraVolumeMounts": [
            {"name": "coursehub-settings", "mountPath": SETTINGS_MOUNT, "readOnly": True},
            # Sign-in tables on SQLite and the released-assignment cache: must survive hub restarts.
            {"name": "coursehub-state", "mountPath": POD_STATE_DIR},
            # The LTI tool key from its Secret, over the file the code reads (never generated in the pod).
            {"name": TOOL_KEY_SECRET, "mountPath": TOOL_KEY_FILE, "subPath": TOOL_KEY_SECRET_KEY, "readOnly": True},
        ],
        "db": db,
        # One Python process serves every launch: give it a full core (and no hub restarts mid-class).
        "resources": {"requests": {"cpu": 1, "memory": "1Gi"}, "limits": {"memory": "4Gi"}},
        "concurrentSpawnLimit": max(settings.hub.concurrent_spawn_limit, capacity.spawn_limit),
        "consecutiveFailureLimit": 0,
        "services": {GRADING_SERVICE: {"url": f"http://{GRADING_NAME}:{grading_port}", "oauth_no_confirm": True},
                     # token only: Prometheus (the chart's ServiceMonitor) scrapes with it
                     METRICS_SERVICE: {}},
        # The textbooks service runs in the hub pod (hub_setup adds it): expose its port to the proxy.
        "service": {"extraPorts": [{"name": "textbooks", "port": textbook_port, "targetPort": textbook_port}]},
        "networkPolicy": {"ingress": [{
            "from": [{"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "proxy"}}}],
            "ports": [{"port": textbook_port, "protocol": "TCP"}],
        }]},
        "loadRoles": {"coursehub-grading": {"services": [GRADING_SERVICE], "scopes": GRADING_SCOPES},
                      METRICS_SERVICE: {"services": [METRICS_SERVICE], "scopes": ["read:metrics"]}},
    }
    if settings.hub.active_server_limit:
        hub["activeServerLimit"] = settings.hub.active_server_limit

    singleuser: dict[str, Any] = {
        "image": split_image(default_image),
        "profileList": profiles,
        "startTimeout": max(settings.hub.start_timeout, boot_seconds + 300),
        "cpu": {"guarantee": min((e.cpu_guarantee for e in envs), default=0.25)},
        "memory": {"guarantee": byte_spec(min((parse_quantity(e.mem_guarantee) for e in envs), default=2**29))},
        "storage": {
            "type": "dynamic",
            "capacity": max((e.storage for e in envs), key=parse_quantity, default="1Gi"),
            "dynamic": {"storageClass": k.storage_class} if k.storage_class else {},
        },
        # The NetworkPolicy (cloudMetadataServer: false) blocks the metadata server; no privileged
        # iptables init container is needed (it would break Pod Security "restricted").
        "cloudMetadata": {"blockWithIptables": False, "ip": CLOUD_METADATA_IP},
        "networkPolicy": {
            "enabled": True,
            "egressAllowRules": {
                "cloudMetadataServer": False,
                "privateIPs": False,
                "nonPrivateIPs": True,
                "dnsPortsPrivateIPs": True,
                "dnsPortsKubeSystemNamespace": True,
                "dnsPortsCloudMetadataServer": False,
            },
            # Only the grading service's API port, nothing else on the cluster network.
            "egress": [{
                "to": [{"podSelector": {"matchLabels": dict(GRADING_POD_LABELS)}}],
                "ports": [{"port": grading_port, "protocol": "TCP"}],
            }],
        },
        # Direct to the service (not through the proxy), with the service prefix its routes use.
        "extraEnv": {"COURSEHUB_GRADING_URL": f"http://{GRADING_NAME}:{grading_port}/services/{GRADING_SERVICE}/"},
        "extraFiles": role_config_files(settings),
    }

    seat = capacity.seat
    placeholder_replicas = 0 if k.scale_placeholders else capacity.placeholder_seats
    scheduling = {
        # User pods only on user nodes (labelled hub.jupyter.org/node-purpose=user).
        "userPods": {"nodeAffinity": {"matchNodePurpose": "require"}},
        # kube-scheduler of the cluster's minor (the chart checks it against .Capabilities.KubeVersion)
        "userScheduler": {"enabled": True, "image": {"name": KUBE_SCHEDULER_IMAGE, "tag": scheduler_tag(settings)}},
        # Placeholders must have a lower priority than users, or they are never preempted.
        "podPriority": {"enabled": True},
        "userPlaceholder": {
            "enabled": True,
            "replicas": placeholder_replicas,
            "resources": {"requests": {"cpu": seat.cpu, "memory": mebibytes(seat.memory)},
                          "limits": {"cpu": seat.cpu, "memory": mebibytes(seat.memory)}},
        },
    }
    any_schedule = any(c.schedule for c in courses)
    pre_puller = {
        "hook": {"enabled": True, "pullOnlyOnChanges": True},
        # Nodes added for a lecture must have the course images before students land on them.
        "continuous": {"enabled": any_schedule or capacity.user_nodes_max > 1},
        "pullProfileListImages": True,
        "extraImages": {"coursehub-grader": split_image(pinned(settings, k.grader_image))},
    }
    cull = {"enabled": idle > 0}
    if idle > 0:
        cull.update(timeout=idle, every=min(600, max(60, idle // 6)), concurrency=5, users=False)

    return {
        "fullnameOverride": "",
        "custom": {"coursehub": {
            "settings": in_cluster_settings(settings),
            "catalogDigest": catalog_digest(courses),
            "courses": sorted(c.id for c in courses),
            "settingsFile": SETTINGS_FILE,
        }},
        "hub": hub,
        "singleuser": singleuser,
        "scheduling": scheduling,
        "prePuller": pre_puller,
        "cull": cull,
        # The proxy carries every byte of every session: a guaranteed share, never evicted first.
        "proxy": {"chp": {"resources": {"requests": {"cpu": "500m", "memory": "256Mi"},
                                        "limits": {"memory": "1Gi"}}}},
    }


def render(settings: Settings, catalog: Catalog, *, week_of: dt.datetime | None = None) -> dict[str, Any]:
    """The umbrella chart's values: `jupyterhub:` (z2jh) plus our `grading:` and `scaler:`."""
    _refuse_inline_password(settings.hub.db_url, "hub.db_url", "hub-password", settings)
    _refuse_inline_password(settings.grading.db_url, "grading.db_url", "grading-password", settings)
    courses = list(catalog)
    week_of = week_of or week_start(dt.datetime.now(dt.UTC).date(), dt.UTC)
    capacity = plan(courses, params_from_settings(settings), week_of)
    k = settings.kubernetes
    grading_db = settings.grading.db_url or ""
    return {
        "jupyterhub": render_z2jh(settings, courses, capacity),
        "coursehub": {"image": split_image(pinned(settings, k.hub_image))},
        "grading": {
            "name": GRADING_NAME,
            "port": settings.grading.port,
            "storage": {"size": k.grading_storage, **({"storageClassName": k.storage_class} if k.storage_class else {})},
            "database": {
                "postgres": grading_db.startswith("postgresql"),
                "passwordSecret": {"name": k.db_secret, "key": "grading-password"},
            },
        },
        "autograde": {"image": split_image(pinned(settings, k.grader_image)),
                      "courseImages": {cid: pinned(settings, ref) for cid, ref in {
                          **course_grader_images(k.grader_image, courses),
                          **environment_images(settings, courses)}.items()}},
        "worker": {"replicas": settings.grading.workers or 2},
        # A ReadWriteMany class (the site file sets courseStorage.storageClassName).
        "courseStorage": {"courses": sorted(c.id for c in courses)},
        "hubState": {"enabled": True, **({"storageClassName": k.storage_class} if k.storage_class else {})},
        "ltiToolKey": {"create": k.lti_key_secret is None, "secretName": tool_key_secret(settings)},
        "scaler": {"enabled": k.scale_placeholders, "maxReplicas": max(capacity.placeholder_seats, 1) * 2},
    }


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings (the extraConfig Python) as readable `|` blocks."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockDumper.add_representer(str, _str_representer)


def dump(values: dict[str, Any]) -> str:
    return yaml.dump(values, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, width=100,
                     allow_unicode=True)


HEADER = """\
# Generated by `coursehub helm-values` from {source} and {courses} course(s).
# Do not edit: change the settings or course.yaml files and render again. Keep site-specific
# values (TLS, ingress host, node selectors) in a second file given after this one to helm.
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--settings", type=Path, help="platform settings file")
    p.add_argument("--courses-dir", type=Path, help="folder of courses (default: from the settings)")
    p.add_argument("--out", type=Path, required=True, help="where to write the values YAML ('-' for stdout)")
    p.add_argument("--layout", choices=("umbrella", "z2jh"), default="umbrella",
                   help="umbrella: values for helm/coursehub; z2jh: only the jupyterhub chart's values")


def run(args: argparse.Namespace) -> int:
    from coursehub.platform.courses import load_catalog
    from coursehub.platform.errors import ConfigError
    from coursehub.platform.settings import load_settings

    try:
        settings = load_settings(args.settings)
        catalog = load_catalog(args.courses_dir or settings.courses_dir)
        values = render(settings, catalog)
    except (ConfigError, RenderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for note in data_notes(list(catalog)):
        print(f"note: {note}", file=sys.stderr)
    for ref in unpinned_digests(settings, values):
        print(f"note: kubernetes.image_digests has {ref}, which no rendered image uses (re-locked since? "
              "record the new image's digest)", file=sys.stderr)
    if settings.local:
        print("note: these settings are for the local platform; rendered with mode 'kubernetes', the dev "
              "login and the local LMS page off. Use a settings file with `mode: kubernetes`.", file=sys.stderr)
    if args.layout == "z2jh":
        values = values["jupyterhub"]
    text = HEADER.format(source=args.settings or "the built-in settings", courses=len(catalog))
    text += dump(values)
    if str(args.out) == "-":
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0
