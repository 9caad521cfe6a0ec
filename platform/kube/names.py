"""Names the Helm chart (helm/coursehub) and the Python code must agree on. The chart's
values.yaml repeats them; tests/kube/test_chart.py checks that both say the same.

The autograde Kubernetes executor (grading/autograde, issue 5) should label its Job pods with
AUTOGRADE_POD_LABELS (the deny-all NetworkPolicy selects them), run them as
AUTOGRADE_SERVICE_ACCOUNT (no token, no permissions) and create them with the grading service's
account, whose Role allows Jobs only. In the pod, the grading Deployment also passes these as
$COURSEHUB_AUTOGRADE_SERVICE_ACCOUNT, $COURSEHUB_AUTOGRADE_IMAGE and $COURSEHUB_NAMESPACE.
"""

from __future__ import annotations

APP_LABEL = {"app.kubernetes.io/name": "coursehub"}
GRADING_POD_LABELS = {**APP_LABEL, "app.kubernetes.io/component": "grading"}
AUTOGRADE_POD_LABELS = {**APP_LABEL, "app.kubernetes.io/component": "autograde"}

#: The grading Service and Deployment; also the host in hub.services.grading.url.
GRADING_NAME = "coursehub-grading"
GRADING_SERVICE_ACCOUNT = "coursehub-grading"
AUTOGRADE_SERVICE_ACCOUNT = "coursehub-autograde"
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
