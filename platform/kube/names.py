"""Names the Helm chart (helm/coursehub) and the Python code must agree on. The chart's
values.yaml repeats them; tests/kube/test_chart.py checks that both say the same.

The queue worker (its own Deployment, account WORKER_SERVICE_ACCOUNT) creates the autograde Jobs
in a namespace of their own (AUTOGRADE_NAMESPACE_SUFFIX: no Secrets, Pod Security `restricted`,
a quota, deny-all traffic except to the worker's job port). The Job pods carry
AUTOGRADE_POD_LABELS, run as AUTOGRADE_SERVICE_ACCOUNT (no token, no permissions), and the
worker Deployment passes all of this to the executor as $COURSEHUB_AUTOGRADE_* (ENV_* below).
"""

from __future__ import annotations

APP_LABEL = {"app.kubernetes.io/name": "coursehub"}
GRADING_POD_LABELS = {**APP_LABEL, "app.kubernetes.io/component": "grading"}
AUTOGRADE_POD_LABELS = {**APP_LABEL, "app.kubernetes.io/component": "autograde"}

#: The grading Service and Deployment; also the host in hub.services.grading.url.
GRADING_NAME = "coursehub-grading"
GRADING_SERVICE_ACCOUNT = "coursehub-grading"
AUTOGRADE_SERVICE_ACCOUNT = "coursehub-autograde"
#: The queue worker: a Deployment, its Service (grader pods fetch inputs and return results on
#: WORKER_JOB_PORT with a per-job token) and its account (bound only in the autograde namespace).
WORKER_NAME = "coursehub-grading-worker"
WORKER_SERVICE_ACCOUNT = "coursehub-grading-worker"
WORKER_POD_LABELS = {**APP_LABEL, "app.kubernetes.io/component": "grading-worker"}
WORKER_JOB_PORT = 8091
#: Autograde Jobs run in "<release namespace>-autograde" unless autograde.namespace is set.
AUTOGRADE_NAMESPACE_SUFFIX = "-autograde"
#: One ReadWriteMany claim per course: the staff's shared nbgrader course directory.
COURSE_CLAIM_PREFIX = "coursehub-course-"
#: Where the course directories live in the grading and worker pods (settings.state_dir/course-dirs).
POD_COURSE_DIRS = "/srv/coursehub/state/course-dirs"

#: The executor's environment (set by the worker Deployment).
ENV_NAMESPACE = "COURSEHUB_AUTOGRADE_NAMESPACE"
ENV_SERVICE_ACCOUNT = "COURSEHUB_AUTOGRADE_SERVICE_ACCOUNT"
ENV_IMAGE = "COURSEHUB_AUTOGRADE_IMAGE"
ENV_COURSE_IMAGES = "COURSEHUB_AUTOGRADE_COURSE_IMAGES"
ENV_CALLBACK_URL = "COURSEHUB_AUTOGRADE_CALLBACK_URL"
ENV_LISTEN = "COURSEHUB_AUTOGRADE_LISTEN"
#: The JupyterHub service name of the grading service (its token: Secret "hub",
#: key "hub.services.grading.apiToken").
GRADING_SERVICE = "grading"

SETTINGS_CONFIGMAP = "coursehub-settings"
#: The hub pod's state_dir volume (LTI tool key; sign-in tables on SQLite).
HUB_STATE_CLAIM = "coursehub-hub-state"
SETTINGS_MOUNT = "/etc/coursehub"
SETTINGS_FILE = f"{SETTINGS_MOUNT}/settings.yaml"

#: z2jh's placeholder StatefulSet (with fullnameOverride "").
PLACEHOLDER_STATEFULSET = "user-placeholder"


def course_claim(course_id: str) -> str:
    """The course's shared-directory claim (course ids are DNS-safe: see platform/courses.py)."""
    return f"{COURSE_CLAIM_PREFIX}{course_id}"
